package e2e

import (
	"testing"

	"github.com/nexusstore/nexus/e2e/collector"
)

// TestCollectorConfigsValidate checks the shipped Collector configs with
// the Collector's own validator. The googlecloud exporter validates without
// contacting Google; its project comes from the environment.
func TestCollectorConfigsValidate(t *testing.T) {
	tests := []struct {
		name   string
		config string
		env    []string
	}{
		{"collector", "../otel-collector.yaml", []string{
			"NEXUS_OTLP_GRPC=127.0.0.1:4317",
			"NEXUS_OTLP_HTTP=127.0.0.1:4318",
			"NEXUS_PROM_ENDPOINT=127.0.0.1:8889",
			"NEXUS_JAEGER_OTLP=127.0.0.1:14317",
		}},
		{"collector defaults", "../otel-collector.yaml", nil}, // docker-compose's
		{"firebase", "../examples/firebase/otel-collector.yaml", []string{"GOOGLE_CLOUD_PROJECT=nexus-e2e-dummy"}},
		{"agent stand-in", "testdata/agent-otlp-file.yaml", []string{
			"NEXUS_OTLP_GRPC=127.0.0.1:4317",
			"NEXUS_FILE_PATH=" + t.TempDir() + "/metrics.jsonl",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if out, err := collector.Validate(t, tt.config, tt.env); err != nil {
				t.Errorf("otelcol validate --config %s: %v\n%s", tt.config, err, out)
			}
		})
	}
}

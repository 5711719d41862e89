// Command datadog sends a store's metrics and traces to Datadog over OTLP:
// to the Datadog Agent's OTLP ingest on localhost:4317, or to a Collector
// that exports to Datadog (see docs/custom-reporters.md).
//
// Datadog wants delta temporality for counters and histograms, and reads
// unified service tagging from the resource:
//
//	OTEL_SERVICE_NAME=checkout \
//	OTEL_RESOURCE_ATTRIBUTES=deployment.environment=prod,service.version=1.4.2 \
//	go run ./examples/datadog
package main

import (
	"context"
	"log"
	"os"

	"github.com/nexusstore/nexus/nexusotel/otelsetup"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

type Order struct {
	ID    string
	Total int
}

// datadogDefaults fills in what Datadog needs unless the environment says
// otherwise: delta temporality, and the Agent's plaintext OTLP port.
func datadogDefaults() {
	defaults := map[string]string{
		"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta",
		"OTEL_EXPORTER_OTLP_ENDPOINT":                       "http://localhost:4317",
	}
	for k, v := range defaults {
		if _, set := os.LookupEnv(k); !set {
			os.Setenv(k, v)
		}
	}
}

func main() {
	ctx := context.Background()
	datadogDefaults()
	rep, shutdown, err := otelsetup.Setup(ctx, otelsetup.WithOTLP())
	if err != nil {
		log.Fatal(err)
	}
	orders, err := store.New(memory.New[Order, string](), store.Config[Order, string]{
		IDOf:            func(o Order) string { return o.ID },
		Name:            "orders",
		MetricsReporter: rep,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, id := range []string{"o1", "o2", "o3"} {
		if _, err := orders.Save(ctx, Order{ID: id, Total: 42}); err != nil {
			log.Fatal(err)
		}
		if _, err := orders.Get(ctx, id); err != nil {
			log.Fatal(err)
		}
	}
	if err := orders.Close(ctx); err != nil {
		log.Fatal(err)
	}
	// Exports run in the background; shutdown sends what is left. An
	// unreachable agent makes this return an error, never a store call.
	if err := shutdown(ctx); err != nil {
		log.Print(err)
	}
}

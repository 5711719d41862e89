// Command firebase sends a Go backend's store telemetry to the Google Cloud
// project behind a Firebase project (Cloud Monitoring, Cloud Trace). Firebase
// Performance Monitoring itself is a client-app SDK and takes no data from
// servers; a backend reaches the same project through an OpenTelemetry
// Collector with the googlecloud exporter (otel-collector.yaml in this
// directory):
//
//	GOOGLE_CLOUD_PROJECT=my-firebase-project otelcol --config examples/firebase/otel-collector.yaml
//	OTEL_SERVICE_NAME=api go run ./examples/firebase
//
// Cloud Monitoring takes cumulative metrics: keep the default temporality.
package main

import (
	"context"
	"log"
	"os"

	"github.com/nexusstore/nexus/nexusotel/otelsetup"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

type Profile struct {
	UID         string
	DisplayName string
}

func main() {
	ctx := context.Background()
	if _, set := os.LookupEnv("OTEL_EXPORTER_OTLP_ENDPOINT"); !set {
		os.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317") // the local Collector
	}
	rep, shutdown, err := otelsetup.Setup(ctx, otelsetup.WithOTLP())
	if err != nil {
		log.Fatal(err)
	}
	profiles, err := store.New(memory.New[Profile, string](), store.Config[Profile, string]{
		IDOf:            func(p Profile) string { return p.UID },
		Name:            "profiles",
		MetricsReporter: rep,
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := profiles.Save(ctx, Profile{UID: "u1", DisplayName: "Ada"}); err != nil {
		log.Fatal(err)
	}
	for range 3 {
		if _, err := profiles.Get(ctx, "u1"); err != nil {
			log.Fatal(err)
		}
	}
	if err := profiles.Close(ctx); err != nil {
		log.Fatal(err)
	}
	if err := shutdown(ctx); err != nil {
		log.Print(err)
	}
}

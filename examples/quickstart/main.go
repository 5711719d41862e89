// Command quickstart is nexus in one page: a store over the in-memory
// backend, its telemetry on the console and through OpenTelemetry (the
// stdout exporter), and the aggregated stats.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/nexusstore/nexus/nexusotel/otelsetup"
	"github.com/nexusstore/nexus/reporters"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

type User struct {
	ID   string
	Name string
}

func main() {
	ctx := context.Background()

	// OpenTelemetry metrics and traces, exported as JSON to stdout. For a
	// Collector use otelsetup.WithOTLP(), or configure it all with the
	// OTEL_* environment variables and no option.
	otelReporter, shutdown, err := otelsetup.Setup(ctx, otelsetup.WithStdout(os.Stdout), otelsetup.WithGlobal())
	if err != nil {
		log.Fatal(err)
	}
	defer shutdown(ctx)

	// The store's operations become spans under the caller's span.
	ctx, span := otel.Tracer("quickstart").Start(ctx, "handle request")
	defer span.End()

	// A backend that answers in about 2ms, like a nearby database.
	backend := memory.New[User, string](memory.WithLatency(2 * time.Millisecond))
	users, err := store.New(backend, store.Config[User, string]{
		IDOf: func(u User) string { return u.ID },
		Name: "users",
		// Every metric to OpenTelemetry and, one line each, to the console.
		MetricsReporter: reporters.Multi(otelReporter, reporters.NewConsole(os.Stdout)),
	})
	if err != nil {
		log.Fatal(err)
	}

	if _, err := users.Save(ctx, User{ID: "user-123", Name: "Ada"}); err != nil {
		log.Fatal(err)
	}
	users.Invalidate("user-123")
	for range 3 { // a miss that reads the backend, then two cache hits
		if _, err := users.Get(ctx, "user-123"); err != nil {
			log.Fatal(err)
		}
	}
	if _, err := users.Get(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		log.Fatal(err)
	}

	st := users.Stats()
	fmt.Printf("\ngets: %d, average %v, cache hit rate %.0f%%, errors: %d\n\n",
		st.OperationCounts[store.OpGet], st.AverageDurations[store.OpGet].Round(time.Microsecond),
		100*st.CacheHitRate, st.ErrorCount)

	if err := users.Close(ctx); err != nil {
		log.Fatal(err)
	}
}

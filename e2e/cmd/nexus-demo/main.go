// Command nexus-demo keeps a nexus store busy and sends its metrics and
// traces over OTLP, for the observability stack of the repository's
// docker-compose.yml: the Grafana dashboard's panels move (rates need a
// program that keeps working) and Jaeger shows one trace per request, with
// the store's operations and backend calls as child spans.
//
//	docker compose up -d
//	go -C e2e run ./cmd/nexus-demo            # Ctrl-C to stop
//
// Unless the environment says otherwise it sends to
// OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 as
// OTEL_SERVICE_NAME=nexus-demo, OTEL_RESOURCE_ATTRIBUTES=
// service.instance.id=<host name>, exporting metrics every 5 seconds
// (OTEL_METRIC_EXPORT_INTERVAL=5000; the SDK's default is a minute). The
// store, "demo", runs over the in-memory backend with 2ms of latency and 2%
// of its calls failing: reads that hit and miss, saves (some write-behind,
// pushed by a background Sync every 2 seconds), deletes, evictions from a
// bounded cache, errors.
//
// It lives in the e2e module, which tests it (TestDemoThroughCollector),
// so that the library's module stays free of it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"

	"github.com/nexusstore/nexus/nexusotel/otelsetup"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

// Item is what the demo store holds.
type Item struct {
	ID    string
	Value int
}

func main() {
	duration := flag.Duration("duration", 0, "how long to run; 0: until interrupted")
	rate := flag.Float64("rate", 20, "requests per second")
	flag.Parse()
	if *rate <= 0 {
		log.Fatal("nexus-demo: -rate must be positive")
	}
	defaults()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if err := run(ctx, *rate); err != nil {
		log.Fatal("nexus-demo: ", err)
	}
}

// defaults sets the OTEL_* variables the stack needs, unless set.
func defaults() {
	host, err := os.Hostname()
	if err != nil {
		host = "nexus-demo-1"
	}
	for k, v := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4317",
		"OTEL_SERVICE_NAME":           "nexus-demo",
		"OTEL_RESOURCE_ATTRIBUTES":    "service.instance.id=" + host,
		"OTEL_METRIC_EXPORT_INTERVAL": "5000",
	} {
		if _, set := os.LookupEnv(k); !set {
			os.Setenv(k, v)
		}
	}
}

// run sends the requests until ctx is done, then closes the store and
// flushes the telemetry; an export that failed is an error.
func run(ctx context.Context, rate float64) (err error) {
	// WithGlobal: the request spans below are made by the same
	// TracerProvider as the store's, so they share traces.
	rep, shutdown, err := otelsetup.Setup(context.WithoutCancel(ctx), otelsetup.WithOTLP(), otelsetup.WithGlobal())
	if err != nil {
		return err
	}
	defer func() {
		if serr := shutdown(context.WithoutCancel(ctx)); serr != nil {
			err = errors.Join(err, fmt.Errorf("telemetry not delivered: %w", serr))
		}
	}()

	backend := memory.New[Item, string](memory.WithLatency(2*time.Millisecond), memory.WithFailureRate(0.02))
	items, err := store.New(backend, store.Config[Item, string]{
		IDOf:            func(i Item) string { return i.ID },
		Name:            "demo",
		MaxCacheSize:    100,
		SyncInterval:    2 * time.Second,
		Retry:           store.RetryConfig{MaxAttempts: 2, InitialDelay: 50 * time.Millisecond},
		MetricsReporter: rep,
	})
	if err != nil {
		return err
	}
	fmt.Printf("nexus-demo: store %q sending to %s as %s, %.0f requests/s; Grafana: http://localhost:3000, Jaeger: http://localhost:16686\n",
		items.Name(), os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), os.Getenv("OTEL_SERVICE_NAME"), rate)

	tracer := otel.Tracer("github.com/nexusstore/nexus/e2e/cmd/nexus-demo")
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	requests, failed := 0, 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		rctx, span := tracer.Start(context.WithoutCancel(ctx), "demo request")
		if err := request(rctx, items); err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			failed++
		}
		span.End()
		requests++
	}

	// Close runs a last Sync; changes still pending after it (the backend
	// fails on purpose) are reported, not lost silently.
	closeErr := items.Close(context.WithoutCancel(ctx))
	var unsynced *store.UnsyncedError[string]
	if errors.As(closeErr, &unsynced) {
		log.Print("nexus-demo: ", closeErr)
		closeErr = nil
	}
	st := items.Stats()
	fmt.Printf("nexus-demo: %d requests, %d failed; cache hit rate %.2f\n", requests, failed, st.CacheHitRate)
	return closeErr
}

// request is one unit of work: mostly reads of a skewed key space (hot keys
// hit the cache, cold ones miss and are then saved), some write-behind
// saves, a few deletes.
func request(ctx context.Context, items *store.Store[Item, string]) error {
	id := key()
	switch r := rand.Float64(); {
	case r < 0.75:
		_, err := items.Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			_, err = items.Save(ctx, Item{ID: id, Value: rand.IntN(1000)})
		}
		return err
	case r < 0.95:
		_, err := items.Save(ctx, Item{ID: id, Value: rand.IntN(1000)}, store.WithWritePolicy(store.WriteCacheFirst))
		return err
	default:
		err := items.Delete(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}
}

// key picks an item ID: 80% of requests go to 20 hot keys, the rest to 500
// cold ones (more than the cache holds).
func key() string {
	if rand.Float64() < 0.8 {
		return fmt.Sprintf("hot-%d", rand.IntN(20))
	}
	return fmt.Sprintf("cold-%d", rand.IntN(500))
}

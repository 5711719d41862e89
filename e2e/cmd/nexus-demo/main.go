// Command nexus-demo keeps a nexus store busy and sends its metrics and
// traces over OTLP, for the observability stack of the repository's
// docker-compose.yml: the Grafana dashboard's panels move (rates need a
// program that keeps working) and Jaeger shows one trace per request, with
// the store's operations and backend calls as child spans.
//
//	docker compose up -d
//	go -C e2e run ./cmd/nexus-demo -duration 20s   # or until Ctrl-C without -duration
//
// Unless the environment says otherwise it sends to
// OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 over gRPC
// (OTEL_EXPORTER_OTLP_PROTOCOL=grpc) as OTEL_SERVICE_NAME=nexus-demo,
// OTEL_RESOURCE_ATTRIBUTES=service.instance.id=<host name>, exporting
// metrics every 5 seconds (OTEL_METRIC_EXPORT_INTERVAL=5000; the SDK's
// default is a minute); the other OTEL_* variables apply as usual. Run a second one with another
// OTEL_RESOURCE_ATTRIBUTES=service.instance.id=... to see replicas. The
// store, "demo", runs over the in-memory backend with 2ms of latency and
// -failure-rate (default 2%) of its calls failing: reads that hit and miss,
// saves (some write-behind, pushed by a background Sync every 2 seconds),
// deletes, evictions from a bounded cache, errors. -rate sets the requests
// per second (default 20).
//
// With -backend postgres (or NEXUS_BACKEND=postgres) the store runs over
// PostgreSQL instead, at -postgres-url (or NEXUS_POSTGRES_URL; default
// postgres://nexus:nexus@localhost:5432/nexus, the docker-compose.yml
// database), in the table demo_items, with no injected failures: run two
// of them, with two service.instance.id values, to see two replicas whose
// caches the change feed keeps coherent (remote invalidations and the feed's
// lag in the metrics).
//
// When it stops it prints its request count, the store's own operation
// counts (which the exported totals must match) and the slowest store call
// of each kind as it timed them; for instance, after 30 seconds with -rate
// 25 -failure-rate 0.05 in the end-to-end tests:
//
//	nexus-demo: 746 requests, 13 failed; cache hit rate 0.73
//	nexus-demo: operations delete=42 get=557 save=291 sync=15
//	nexus-demo: max latency delete=20.204193ms get=7.904738ms save=19.170534ms
//
// It lives in the e2e module, which tests it (TestStackEndToEnd,
// TestOutagesMidRun), so that the library's module stays free of it.
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
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"

	"github.com/nexusstore/nexus/nexusotel/otelsetup"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
	"github.com/nexusstore/nexus/store/postgres"
)

// Item is what the demo store holds.
type Item struct {
	ID    string
	Value int
}

func main() {
	duration := flag.Duration("duration", 0, "how long to run; 0: until interrupted")
	rate := flag.Float64("rate", 20, "requests per second")
	failures := flag.Float64("failure-rate", 0.02, "fraction of the backend's calls that fail (memory backend)")
	backendName := flag.String("backend", envOr("NEXUS_BACKEND", "memory"), "memory or postgres")
	pgURL := flag.String("postgres-url", envOr("NEXUS_POSTGRES_URL", "postgres://nexus:nexus@localhost:5432/nexus"), "the database, with -backend postgres")
	flag.Parse()
	if *backendName != "memory" && *backendName != "postgres" {
		log.Fatalf("nexus-demo: -backend %q: want memory or postgres", *backendName)
	}
	if *rate <= 0 {
		log.Fatal("nexus-demo: -rate must be positive")
	}
	if *failures < 0 || *failures > 1 {
		log.Fatal("nexus-demo: -failure-rate must be in [0, 1]")
	}
	defaults()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if err := run(ctx, *rate, *failures, *backendName, *pgURL); err != nil {
		log.Fatal("nexus-demo: ", err)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// openBackend returns the demo's backend and what closes it.
func openBackend(ctx context.Context, name, pgURL string, failures float64) (store.Backend[Item, string], func(), error) {
	if name == "memory" {
		return memory.New[Item, string](memory.WithLatency(2*time.Millisecond), memory.WithFailureRate(failures)), func() {}, nil
	}
	pool, err := pgxpool.New(ctx, pgURL)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to %s: %w", pgURL, err)
	}
	b, err := postgres.New[Item, string](ctx, pool, postgres.WithTable("demo_items"))
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return b, func() { _ = b.Close(); pool.Close() }, nil
}

// defaults sets the OTEL_* variables the stack needs, unless set.
func defaults() {
	host, err := os.Hostname()
	if err != nil {
		host = "nexus-demo-1"
	}
	for k, v := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4317",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", // what 4317 speaks
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
func run(ctx context.Context, rate, failures float64, backendName, pgURL string) (err error) {
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

	backend, closeBackend, err := openBackend(ctx, backendName, pgURL, failures)
	if err != nil {
		return err
	}
	defer closeBackend()
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
	fmt.Printf("nexus-demo: store %q over %s sending to %s as %s, %.0f requests/s; Grafana: http://localhost:3000, Jaeger: http://localhost:16686\n",
		items.Name(), backendName, os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), os.Getenv("OTEL_SERVICE_NAME"), rate)

	tracer := otel.Tracer("github.com/nexusstore/nexus/e2e/cmd/nexus-demo")
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	requests, failed := 0, 0
	slowest := make(maxLatency)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		rctx, span := tracer.Start(context.WithoutCancel(ctx), "demo request")
		if err := request(rctx, items, slowest); err != nil {
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
	// The store's own counts (exact at the default SampleRate 1), which the
	// exported totals must match, and the slowest call of each kind as the
	// program saw it: telemetry must never slow the store down, even while
	// the Collector or Jaeger is away.
	fmt.Printf("nexus-demo: operations%s\n", counts(st.OperationCounts))
	fmt.Printf("nexus-demo: max latency%s\n", slowest)
	return closeErr
}

// counts formats operation counts as " get=N save=M ...", by operation name.
func counts(ops map[store.OperationType]int64) string {
	var parts []string
	for op, n := range ops {
		parts = append(parts, fmt.Sprintf(" %s=%d", op, n))
	}
	slices.Sort(parts)
	return strings.Join(parts, "")
}

// maxLatency keeps the longest call of each store method the demo makes,
// timed around the call.
type maxLatency map[string]time.Duration

// observe keeps the duration of the call of op that started at start if it
// is the longest so far.
func (m maxLatency) observe(op string, start time.Time) {
	if d := time.Since(start); d > m[op] {
		m[op] = d
	}
}

// String formats the maxima as " get=1.2ms save=...", by operation name.
func (m maxLatency) String() string {
	var parts []string
	for op, d := range m {
		parts = append(parts, fmt.Sprintf(" %s=%v", op, d))
	}
	slices.Sort(parts)
	return strings.Join(parts, "")
}

// request is one unit of work: mostly reads of a skewed key space (hot keys
// hit the cache, cold ones miss and are then saved), some write-behind
// saves, a few deletes. Each store call is timed into slowest.
func request(ctx context.Context, items *store.Store[Item, string], slowest maxLatency) error {
	id := key()
	switch r := rand.Float64(); {
	case r < 0.75:
		start := time.Now()
		_, err := items.Get(ctx, id)
		slowest.observe("get", start)
		if errors.Is(err, store.ErrNotFound) {
			start = time.Now()
			_, err = items.Save(ctx, Item{ID: id, Value: rand.IntN(1000)})
			slowest.observe("save", start)
		}
		return err
	case r < 0.95:
		start := time.Now()
		_, err := items.Save(ctx, Item{ID: id, Value: rand.IntN(1000)}, store.WithWritePolicy(store.WriteCacheFirst))
		slowest.observe("save", start)
		return err
	default:
		start := time.Now()
		err := items.Delete(ctx, id)
		slowest.observe("delete", start)
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

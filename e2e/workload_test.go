package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nexusstore/nexus/nexusotel/otelsetup"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

// storeName names the workload's store: the nexus.store.name attribute.
const storeName = "e2e_users"

type user struct {
	ID   string
	Name string
}

// expectedSeries are the series runWorkload produces and their totals: a
// histogram's count, a counter's value. attrs is a subset of the series'
// attributes that picks exactly one series.
var expectedSeries = []struct {
	metric string // the OpenTelemetry instrument
	// prom is the sample name the Collector's prometheus exporter serves
	// (v0.161.0, default translation): unit suffix for seconds, _total for
	// counters, the {event} annotation dropped.
	prom  string
	attrs map[string]string
	want  float64
}{
	{"nexus.store.operation.duration", "nexus_store_operation_duration_seconds_count",
		map[string]string{"nexus.store.operation": "save"}, 5},
	{"nexus.store.operation.duration", "nexus_store_operation_duration_seconds_count",
		map[string]string{"nexus.store.operation": "get", "nexus.cache.result": "hit"}, 5},
	{"nexus.store.operation.duration", "nexus_store_operation_duration_seconds_count",
		map[string]string{"nexus.store.operation": "get", "nexus.cache.result": "miss"}, 5},
	{"nexus.store.backend.duration", "nexus_store_backend_duration_seconds_count",
		map[string]string{"nexus.store.operation": "save"}, 5},
	{"nexus.store.backend.duration", "nexus_store_backend_duration_seconds_count",
		map[string]string{"nexus.store.operation": "get"}, 5},
	{"nexus.store.cache.events", "nexus_store_cache_events_total",
		map[string]string{"nexus.cache.event": "hit"}, 5},
	{"nexus.store.cache.events", "nexus_store_cache_events_total",
		map[string]string{"nexus.cache.event": "miss"}, 5},
	{"nexus.store.cache.events", "nexus_store_cache_events_total",
		map[string]string{"nexus.cache.event": "write"}, 5},
}

// setOTelEnv replaces the test's OTEL_* environment with kv ("KEY=value"),
// for the SDK that otelsetup builds; the old values come back at the end of
// the test.
func setOTelEnv(t *testing.T, kv ...string) {
	t.Helper()
	for _, e := range os.Environ() {
		if k, _, _ := strings.Cut(e, "="); strings.HasPrefix(k, "OTEL_") {
			t.Setenv(k, "") // restores the value at cleanup
			os.Unsetenv(k)
		}
	}
	for _, e := range kv {
		k, v, _ := strings.Cut(e, "=")
		t.Setenv(k, v)
	}
}

// runWorkload builds the OTLP pipeline from the environment (otelsetup with
// WithOTLP) and a store over the memory backend, runs 5 saves, calls
// afterSaves (if not nil), runs 5 gets of saved items (cache hits) and 5
// gets of absent items (misses, answered ErrNotFound by the backend), then
// closes the store and shuts the pipeline down, which exports everything
// recorded. An export that fails fails the test: shutdown reports it.
func runWorkload(t *testing.T, afterSaves func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	rep, shutdown, err := otelsetup.Setup(ctx, otelsetup.WithOTLP())
	if err != nil {
		t.Fatalf("otelsetup.Setup: %v", err)
	}
	defer func() {
		if err := shutdown(ctx); err != nil {
			t.Errorf("OTel shutdown (final export): %v", err)
		}
	}()
	users, err := store.New(memory.New[user, string](), store.Config[user, string]{
		IDOf:            func(u user) string { return u.ID },
		Name:            storeName,
		MetricsReporter: rep,
	})
	if err != nil {
		t.Fatalf("store.New: %v", err)
	}
	defer func() {
		if err := users.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()

	for i := range 5 {
		if _, err := users.Save(ctx, user{ID: fmt.Sprintf("u%d", i), Name: "user"}); err != nil {
			t.Fatalf("Save: %v", err)
		}
	}
	if afterSaves != nil {
		afterSaves()
	}
	for i := range 5 {
		if _, err := users.Get(ctx, fmt.Sprintf("u%d", i)); err != nil {
			t.Fatalf("Get (hit): %v", err)
		}
	}
	for i := range 5 {
		if _, err := users.Get(ctx, fmt.Sprintf("absent%d", i)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get (miss) = %v, want ErrNotFound", err)
		}
	}
}

// hasAttrs reports whether attrs includes every key and value of want.
func hasAttrs(attrs, want map[string]string) bool {
	for k, v := range want {
		if got, ok := attrs[k]; !ok || got != v {
			return false
		}
	}
	return true
}

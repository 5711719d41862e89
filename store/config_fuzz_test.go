package store_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

// Bits of FuzzConfig's flags argument.
const (
	fuzzNoIDOf          = 1 << iota // Config.IDOf left nil
	fuzzResolver                    // Config.ResolveConflict set
	fuzzTypedNilBackend             // a nil *memory.Backend as the backend
)

// configProblems lists the fields of cfg that docs/store.md and the Config
// documentation call invalid, written from the documentation rather than
// from New's code.
func configProblems(cfg store.Config[User, string], typedNil bool) []string {
	var bad []string
	add := func(cond bool, field string) {
		if cond {
			bad = append(bad, field)
		}
	}
	negative := func(d time.Duration) bool { return d < 0 }
	add(typedNil, "backend")
	add(cfg.IDOf == nil, "IDOf")
	add(cfg.FetchPolicy > store.FetchStaleWhileRevalidate, "FetchPolicy")
	add(cfg.WritePolicy > store.WriteCacheOnly, "WritePolicy")
	add(negative(cfg.CacheTTL), "CacheTTL")
	add(negative(cfg.NotFoundTTL), "NotFoundTTL")
	add(cfg.MaxCacheSize < 0, "MaxCacheSize")
	add(cfg.RefreshWorkers < 0, "RefreshWorkers")
	add(negative(cfg.SyncInterval), "SyncInterval")
	add(cfg.Conflict > store.ConflictCustom, "Conflict")
	add(cfg.Conflict == store.ConflictCustom && cfg.ResolveConflict == nil, "ResolveConflict")
	add(negative(cfg.TransactionTimeout), "TransactionTimeout")
	add(strings.TrimSpace(cfg.Name) != cfg.Name, "Name")
	r := cfg.Retry
	add(r.MaxAttempts < 0, "Retry.MaxAttempts")
	add(negative(r.InitialDelay), "Retry.InitialDelay")
	add(negative(r.MaxDelay) || (r.MaxDelay > 0 && r.InitialDelay > r.MaxDelay), "Retry.MaxDelay")
	add(math.IsNaN(r.Multiplier) || math.IsInf(r.Multiplier, 0) || (r.Multiplier != 0 && r.Multiplier < 1), "Retry.Multiplier")
	add(r.Jitter != store.NoJitter && !(r.Jitter >= 0 && r.Jitter <= 1), "Retry.Jitter")
	m := cfg.Metrics
	add(!(m.SampleRate >= 0 && m.SampleRate <= 1), "Metrics.SampleRate")
	add(m.BufferSize < 0, "Metrics.BufferSize")
	add(negative(m.FlushInterval), "Metrics.FlushInterval")
	return bad
}

// opCounter counts the operations a store reports.
type opCounter struct{ n atomic.Int64 }

func (c *opCounter) ReportOperation(context.Context, store.OperationMetric) { c.n.Add(1) }
func (c *opCounter) ReportCacheEvent(context.Context, store.CacheMetric)    {}
func (c *opCounter) ReportSyncEvent(context.Context, store.SyncMetric)      {}
func (c *opCounter) ReportError(context.Context, store.ErrorMetric)         {}
func (c *opCounter) Flush(context.Context) error                            { return nil }

// FuzzConfig builds a Config from fuzzed fields and checks New: it never
// panics; it returns a *ConfigError (matching ErrInvalidConfig, its message
// "store: invalid config: <Field>: <reason>") naming one of the fields the
// documentation calls invalid, or, when there is none, a working store. A
// store it accepts serves a Get without panicking, and samples as its
// SampleRate says (a tiny rate must not report everything).
func FuzzConfig(f *testing.F) {
	f.Fuzz(func(t *testing.T, name string, fetch, write, conflict uint8,
		ttl, notFoundTTL, syncEvery, txTimeout int64, maxSize, workers int,
		attempts int, initialDelay, maxDelay int64, multiplier, jitter float64,
		sampleRate float64, bufferSize int, flushEvery int64, flags uint8) {
		rec := &opCounter{}
		cfg := store.Config[User, string]{
			IDOf: userID, Name: name,
			FetchPolicy: store.FetchPolicy(fetch), WritePolicy: store.WritePolicy(write),
			CacheTTL: time.Duration(ttl), NotFoundTTL: time.Duration(notFoundTTL), MaxCacheSize: maxSize, RefreshWorkers: workers,
			SyncInterval: time.Duration(syncEvery), Conflict: store.ConflictStrategy(conflict),
			TransactionTimeout: time.Duration(txTimeout),
			Retry: store.RetryConfig{
				MaxAttempts: attempts, InitialDelay: time.Duration(initialDelay), MaxDelay: time.Duration(maxDelay),
				Multiplier: multiplier, Jitter: jitter,
			},
			MetricsReporter: rec,
			Metrics:         store.MetricsConfig{SampleRate: sampleRate, BufferSize: bufferSize, FlushInterval: time.Duration(flushEvery)},
		}
		if flags&fuzzNoIDOf != 0 {
			cfg.IDOf = nil
		}
		if flags&fuzzResolver != 0 {
			cfg.ResolveConflict = func(store.Conflict[User, string]) store.Resolution[User] { return store.KeepRemote[User]() }
		}
		// A huge interval or worker count is valid; keep the run short.
		if cfg.SyncInterval > 0 && cfg.SyncInterval < time.Millisecond {
			cfg.SyncInterval = time.Millisecond
		}
		backend := memory.New[User, string]()
		typedNil := flags&fuzzTypedNilBackend != 0
		if typedNil {
			backend = nil
		}
		want := configProblems(cfg, typedNil)

		s, err := store.New[User, string](backend, cfg)
		if err != nil {
			var ce *store.ConfigError
			switch {
			case !errors.As(err, &ce) || !errors.Is(err, store.ErrInvalidConfig):
				t.Fatalf("New: %v (%T), want a *ConfigError matching ErrInvalidConfig", err, err)
			case ce.Reason == "" || err.Error() != "store: invalid config: "+ce.Field+": "+ce.Reason:
				t.Errorf("New: the error %q does not read \"store: invalid config: <Field>: <reason>\"", err)
			case len(want) == 0:
				t.Errorf("New refused a valid config: %v", err)
			case !slices.Contains(want, ce.Field):
				t.Errorf("New: %v; the invalid fields are %v", err, want)
			}
			return
		}
		defer s.Close(context.Background())
		if len(want) > 0 {
			t.Fatalf("New accepted a config with invalid fields %v", want)
		}
		s.Get(context.Background(), "u1")
		if r := sampleRate; r > 0 && r < 1e-3 {
			// The expected count is below 0.3 in 300 reads; 10 is
			// astronomically unlikely unless sampling is broken.
			for range 300 {
				s.Get(context.Background(), "u1")
			}
			if n := rec.n.Load(); n > 10 {
				t.Errorf("SampleRate %g reported %d of 301 operations", r, n)
			}
		}
	})
}

package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nexusstore/nexus/reporters/reportertest"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
	"github.com/nexusstore/nexus/store/sqlite"
)

// Issue 9, item 9: a sample rate too small for the sampling threshold's
// precision samples (almost) nothing, not everything.
func TestTinySampleRateSamplesAlmostNothing(t *testing.T) {
	for _, rate := range []float64{1e-30, 5e-20, 1e-300, 4.9e-324} {
		rec := reportertest.New()
		f := newFixture(t, store.Config[User, string]{MetricsReporter: rec, Metrics: store.MetricsConfig{SampleRate: rate}})
		for range 2000 {
			_, _ = f.s.Get(context.Background(), "absent")
		}
		if n := len(rec.Operations()); n != 0 {
			t.Errorf("SampleRate %g: %d of 2000 operations reported, want 0", rate, n)
		}
	}
}

// Issue 9, item 9: a panicking Retry.Retryable is contained, in a
// foreground Sync and in the background sync loop; the change stays
// pending.
func TestPanickingRetryableIsContained(t *testing.T) {
	retry := store.RetryConfig{MaxAttempts: 3, InitialDelay: time.Millisecond, Jitter: store.NoJitter,
		Retryable: func(error) bool { panic("retryable exploded") }}
	t.Run("Sync", func(t *testing.T) {
		ctx := context.Background()
		f := newFixture(t, store.Config[User, string]{Retry: retry})
		if _, err := f.s.Save(ctx, User{ID: "u1"}, store.WithWritePolicy(store.WriteCacheFirst)); err != nil {
			t.Fatal(err)
		}
		f.b.SetUnavailable(true)
		err := f.s.Sync(ctx)
		if err == nil || !strings.Contains(err.Error(), "Retryable panicked") {
			t.Errorf("Sync = %v, want an error saying Retryable panicked", err)
		}
		if n := len(f.s.PendingChanges()); n != 1 {
			t.Errorf("%d pending changes, want 1", n)
		}
	})
	t.Run("background", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			var handled []error
			f := newFixture(t, store.Config[User, string]{Retry: retry, SyncInterval: time.Second,
				ErrorHandler: func(err error) { handled = append(handled, err) }})
			if _, err := f.s.Save(ctx, User{ID: "u1"}, store.WithWritePolicy(store.WriteCacheFirst)); err != nil {
				t.Fatal(err)
			}
			f.b.SetUnavailable(true)
			time.Sleep(1500 * time.Millisecond) // fake time: one interval sync runs
			synctest.Wait()
			if len(handled) == 0 || !strings.Contains(handled[0].Error(), "Retryable panicked") {
				t.Errorf("ErrorHandler got %v, want the contained panic", handled)
			}
			f.b.SetUnavailable(false)
		})
	})
}

// Issue 9, item 9: a typed nil backend (a nil *sqlite.Backend from a failed
// Open whose error was ignored) is refused by New with a ConfigError.
func TestTypedNilBackendRefused(t *testing.T) {
	var sb *sqlite.Backend[User, string]
	var mb *memory.Backend[User, string]
	for _, b := range []store.Backend[User, string]{sb, mb} {
		s, err := store.New[User, string](b, store.Config[User, string]{IDOf: userID})
		var ce *store.ConfigError
		if s != nil || !errors.As(err, &ce) || ce.Field != "backend" {
			t.Errorf("New(%T(nil)) = %v, %v; want a ConfigError naming backend", b, s, err)
			continue
		}
		if !strings.Contains(err.Error(), "nil") {
			t.Errorf("error %q does not say the backend is nil", err)
		}
	}
}

// Backend failures read alike whichever backend failed: the store: prefix,
// ErrBackend, and the backend's own sentinel; a not-found is the store's
// own error.
func TestBackendErrorsReadAlike(t *testing.T) {
	ctx := context.Background()
	sb, err := sqlite.Open[User, string](t.TempDir() + "/db")
	if err != nil {
		t.Fatal(err)
	}
	mb := memory.New[User, string]()
	for _, b := range []store.Backend[User, string]{mb, sb} {
		s, err := store.New[User, string](b, store.Config[User, string]{IDOf: userID})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Get(ctx, "nobody")
		if !errors.Is(err, store.ErrNotFound) || err.Error() != "store: not found: id nobody" {
			t.Errorf("%T: not found = %q", b, err)
		}
		// A failure: the memory backend injected, SQLite closed under the
		// store.
		if b == mb {
			mb.SetUnavailable(true)
		} else if err := sb.Close(); err != nil {
			t.Fatal(err)
		}
		_, err = s.Save(ctx, User{ID: "u1"})
		var be *store.BackendError
		if !errors.Is(err, store.ErrBackend) || !errors.As(err, &be) || be.Op != store.OpSave ||
			!strings.HasPrefix(err.Error(), "store: backend save: ") || strings.Contains(err.Error(), "store: store:") {
			t.Errorf("%T: failure = %q, want a *BackendError for save", b, err)
		}
		_ = s.Close(ctx)
	}
}

// appliedThenFailed is a backend whose next save reaches the backend and
// then fails, as a timeout after the commit does.
type appliedThenFailed struct {
	*memory.Backend[User, string]
	fail bool
}

func (b *appliedThenFailed) SaveVersioned(ctx context.Context, id string, u User, expect uint64) (store.Versioned[User], error) {
	v, err := b.Backend.SaveVersioned(ctx, id, u, expect)
	if b.fail {
		b.fail = false
		return store.Versioned[User]{}, context.DeadlineExceeded
	}
	return v, err
}

// A write-through that failed may still have reached the backend: the
// cache does not go on serving the value before it.
func TestAmbiguousWriteFailureRevalidates(t *testing.T) {
	ctx := context.Background()
	for _, p := range []store.WritePolicy{store.WriteCacheAndNetwork, store.WriteNetworkFirst} {
		t.Run(p.String(), func(t *testing.T) {
			b := &appliedThenFailed{Backend: memory.New[User, string]()}
			s, err := store.New[User, string](b, store.Config[User, string]{IDOf: userID, WritePolicy: p})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(ctx)
			if _, err := s.Save(ctx, User{ID: "u1", Name: "v0"}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetAll(ctx); err != nil { // the listing is complete in the cache
				t.Fatal(err)
			}
			b.fail = true
			if _, err := s.Save(ctx, User{ID: "u1", Name: "v1"}); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Save = %v, want the ambiguous failure", err)
			}
			if u := mustGet(t, s, "u1"); u.Name != "v1" {
				t.Errorf("Get = %q, want the backend's v1", u.Name)
			}
			if all, _ := s.GetAll(ctx); len(all) != 1 || all[0].Name != "v1" {
				t.Errorf("GetAll = %+v, want the backend's v1", all)
			}
		})
	}
}

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

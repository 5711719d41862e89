package store_test

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/nexusstore/nexus/reporters/reportertest"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type User struct {
	ID   string
	Name string
	Age  int
}

func userID(u User) string { return u.ID }

// fixture is a store over a memory backend with a recorder.
type fixture struct {
	t   *testing.T
	s   *store.Store[User, string]
	b   *memory.Backend[User, string]
	rec *reportertest.Recorder
}

// newFixture builds a store; cfg.IDOf is filled in. With noRecorder the
// store keeps the no-op reporter.
func newFixture(t *testing.T, cfg store.Config[User, string], opts ...memory.Option) *fixture {
	t.Helper()
	f := &fixture{t: t, b: memory.New[User, string](opts...)}
	if cfg.IDOf == nil {
		cfg.IDOf = userID
	}
	if cfg.MetricsReporter == nil {
		f.rec = reportertest.New(reportertest.WithItemIDs())
		cfg.MetricsReporter = f.rec
	}
	s, err := store.New[User, string](f.b, cfg)
	if err != nil {
		t.Fatalf("store.New: %v", err)
	}
	f.s = s
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return f
}

// seed saves users straight into the backend, bypassing the cache.
func (f *fixture) seed(users ...User) {
	f.t.Helper()
	for _, u := range users {
		if _, err := f.b.Save(context.Background(), u.ID, u); err != nil {
			f.t.Fatal(err)
		}
	}
}

// cached reads id from the cache only, bypassing telemetry expectations.
func (f *fixture) cached(id string) (User, bool) {
	u, err := f.s.Get(context.Background(), id, store.WithFetchPolicy(store.FetchCacheOnly))
	return u, err == nil
}

func (f *fixture) backendHas(id string) (User, bool) {
	u, err := f.b.Get(context.Background(), id)
	return u, err == nil
}

func (f *fixture) gets() uint64 { return f.b.Calls(memory.OpGet) }

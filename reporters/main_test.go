package reporters

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// user is the item type of the end-to-end tests.
type user struct {
	ID   string
	Name string
}

// newUserStore returns a store over an empty memory backend reporting to r,
// closed when the test ends.
func newUserStore(t testing.TB, r store.MetricsReporter, opts ...func(*store.Config[user, string])) (*store.Store[user, string], *memory.Backend[user, string]) {
	t.Helper()
	b := memory.New[user, string]()
	cfg := store.Config[user, string]{
		IDOf:            func(u user) string { return u.ID },
		MetricsReporter: r,
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := store.New(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("closing the store: %v", err)
		}
	})
	return s, b
}

var errUnavailable = errors.New("store: backend unavailable")

// The metrics of the golden tests.
var (
	opGetHit = store.OperationMetric{
		Operation: store.OpGet, Duration: 15 * time.Millisecond, Success: true, ItemCount: 1,
		Policy: store.FetchCacheFirst.Policy(), CacheResult: store.CacheResultHit, ItemID: "user-123", SampleRate: 1,
	}
	opSaveAllFailed = store.OperationMetric{
		Operation: store.OpSaveAll, Duration: 2100 * time.Microsecond, ItemCount: 3,
		Policy: store.WriteCacheAndNetwork.Policy(), Err: errUnavailable, SampleRate: 1,
	}
	cacheEviction = store.CacheMetric{Event: store.CacheEviction, ItemID: "user-7", SampleRate: 1}
	syncCompleted = store.SyncMetric{Event: store.SyncCompleted, Duration: 40 * time.Millisecond, ItemsSynced: 12}
)

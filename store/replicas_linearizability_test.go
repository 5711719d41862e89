package store_test

// The replica linearizability checker over the memory backend: two or
// three stores, each with its own cache, over one memory.Backend with its
// change feed, with injected latency and faults and, in one configuration,
// feed outages (SetFeedDown). The workload and the model (Δ-atomicity for
// reads a cache may answer, Δ the largest feed lag observed) are in
// internal/lincheck (replicas.go); store/postgres runs the same over
// PostgreSQL. A failing history is written as HTML to
// os.TempDir()/nexus-replicas-<run>-<n>.html.
//
// NEXUS_CHECK_LONG=4m gives it a quarter of that duration;
// NEXUS_REPLICA_HIDE_FEED=1 hides the second store's feed, to see the
// checker fail (stale reads, a cache that never converges);
// NEXUS_REPLICA_TOLERATE=1 tolerates (and counts) the store deviations it
// found before they were fixed, to diagnose a regression
// (lincheck.TolerateEnv; replicas_test.go reproduces each).

import (
	"context"
	"testing"
	"time"

	"github.com/nexusstore/nexus/internal/lincheck"
	"github.com/nexusstore/nexus/store/memory"
)

var replicaRuns = []lincheck.ReplicaRun{
	{Name: "two", Stores: 2, IDs: 4, ClientsPerStore: 3, Ops: 300, FaultRate: 0.1, Latency: 200 * time.Microsecond},
	{Name: "three_ttl_lru", Stores: 3, IDs: 3, ClientsPerStore: 2, Ops: 300, FaultRate: 0.1, Latency: 150 * time.Microsecond,
		TTL: 2 * time.Millisecond, NotFoundTTL: 2 * time.Millisecond, MaxSize: 2},
	{Name: "two_outages", Stores: 2, IDs: 3, ClientsPerStore: 3, Ops: 300, FaultRate: 0.1, Latency: 200 * time.Microsecond,
		NotFoundTTL: time.Hour, Outages: true},
}

func TestReplicaLinearizability(t *testing.T) {
	budget := checkBudget(t, 5*time.Second, 0.25)
	lincheck.RunReplicas(t, "replicas", budget, replicaRuns, func(t *testing.T, run lincheck.ReplicaRun) lincheck.Cluster {
		mb := memory.New[lincheck.Item, string](memory.WithChangeFeed())
		bs := make([]lincheck.FeedBackend, run.Stores)
		for i := range bs {
			bs[i] = mb
		}
		return lincheck.Cluster{
			Backends:    bs,
			Direct:      func(ctx context.Context, id string) (int64, error) { return lincheck.TokOf(mb.Get(ctx, id)) },
			SetFeedDown: mb.SetFeedDown,
			Live:        2 * time.Second,
		}
	})
}

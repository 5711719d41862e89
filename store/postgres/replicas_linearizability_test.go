package postgres_test

// The replica linearizability checker over PostgreSQL: two or three stores,
// each over a Backend of its own pool, on one table, kept coherent by the
// table's LISTEN/NOTIFY change feed; injected latency and faults in front
// of each Backend and, in one configuration, feed outages (the listeners'
// connections terminated by the server). The workload and the model
// (Δ-atomicity for reads a cache may answer, Δ the largest feed lag
// observed) are in internal/lincheck (replicas.go); store runs the same
// over the memory backend. A failing history is written as HTML to
// os.TempDir()/nexus-pg-replicas-<run>-<n>.html.
//
// NEXUS_CHECK_LONG=4m gives it a quarter of that duration;
// NEXUS_REPLICA_TOLERATE=1 tolerates (and counts) the store deviations it
// found before they were fixed (lincheck.TolerateEnv). Under CI=true a missing
// PostgreSQL server fails it (pgtest).

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nexusstore/nexus/internal/lincheck"
	"github.com/nexusstore/nexus/internal/pgtest"
	"github.com/nexusstore/nexus/store/postgres"
)

var pgReplicaRuns = []lincheck.ReplicaRun{
	{Name: "two", Stores: 2, IDs: 4, ClientsPerStore: 3, Ops: 300, FaultRate: 0.1, Latency: 50 * time.Microsecond},
	{Name: "three_ttl_lru", Stores: 3, IDs: 3, ClientsPerStore: 2, Ops: 300, FaultRate: 0.1, Latency: 50 * time.Microsecond,
		TTL: 5 * time.Millisecond, NotFoundTTL: 5 * time.Millisecond, MaxSize: 2},
	{Name: "two_outages", Stores: 2, IDs: 3, ClientsPerStore: 3, Ops: 300, FaultRate: 0.1, Latency: 50 * time.Microsecond,
		NotFoundTTL: time.Hour, Outages: true},
}

func TestReplicaLinearizability(t *testing.T) {
	dsn := pgtest.Shared(t).Database(t)
	pools := []*pgxpool.Pool{pgtest.Pool(t, dsn), pgtest.Pool(t, dsn), pgtest.Pool(t, dsn)}
	budget := lincheck.Budget(t, 4*time.Second, 0.25)
	lincheck.RunReplicas(t, "pg-replicas", budget, pgReplicaRuns, func(t *testing.T, run lincheck.ReplicaRun) lincheck.Cluster {
		table := newTable()
		// The listeners reconnect at once after an outage.
		opts := []postgres.Option{postgres.WithTable(table), postgres.WithFeedBackoff(time.Millisecond, 5*time.Millisecond)}
		bs := make([]lincheck.FeedBackend, run.Stores)
		for i := range bs {
			bs[i] = open[lincheck.Item, string](t, pools[i%len(pools)], opts...)
		}
		direct := open[lincheck.Item, string](t, pools[0], opts...) // no store, no faults
		return lincheck.Cluster{
			Backends: bs,
			Direct:   func(ctx context.Context, id string) (int64, error) { return lincheck.TokOf(direct.Get(ctx, id)) },
			// An outage: the server ends the listeners' connections; they
			// report it (FeedError), reconnect and report that (FeedReset)
			// by themselves, so there is nothing to do to end it.
			SetFeedDown: func(on bool) {
				if !on {
					return
				}
				_, err := pools[0].Exec(context.Background(),
					`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1`, `LISTEN "nexus.`+table+`"`)
				if err != nil {
					t.Errorf("terminating the listeners: %v", err)
				}
			},
			Live: 10 * time.Second,
		}
	})
}

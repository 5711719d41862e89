package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/nexusstore/nexus/internal/pgtest"
)

// TestPostgresReplicasThroughTheStack runs two nexus-demo replicas over one
// real PostgreSQL (as `NEXUS_BACKEND=postgres` does with docker-compose.yml's
// database), through the Collector into Prometheus. Each replica hears the
// other's writes through the change feed: Prometheus shows, per instance,
// remote invalidations, feed events and the feed's lag, and the pool's
// connection gauges; the operation totals are exact, as over memory.
func TestPostgresReplicasThroughTheStack(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewServer(t).Database(t)
	s := startStack(t)
	bin := demoBinary(t)

	env := []string{"NEXUS_BACKEND=postgres", "NEXUS_POSTGRES_URL=" + dsn}
	replicas := []string{"pg-a", "pg-b"}
	var demos []*demo
	for _, name := range replicas {
		demos = append(demos, startDemo(t, bin, s.grpcAddr, name, env, "-duration=15s", "-rate=25"))
	}
	want := map[string]float64{}
	var sum float64
	for _, d := range demos {
		r := d.wait(t, time.Minute)
		checkMaxLatency(t, r, 500*time.Millisecond)
		want[fmt.Sprintf(`sum(nexus_store_operation_duration_seconds_count{job="nexus-demo", nexus_store_name="demo", instance=%q})`, d.name)] = r.total()
		sum += r.total()
	}
	want[`sum(nexus_store_operation_duration_seconds_count{job="nexus-demo", nexus_store_name="demo", instance=~"pg-a|pg-b"})`] = sum
	at := s.prom.waitValues("the Postgres replicas' totals", want)

	for _, name := range replicas {
		sel := fmt.Sprintf(`job="nexus-demo", nexus_store_name="demo", instance=%q`, name)
		for _, q := range []string{
			`sum(nexus_store_cache_events_total{` + sel + `, nexus_cache_event="invalidation", nexus_cache_origin="remote"})`,
			`sum(nexus_store_feed_events_total{` + sel + `, nexus_feed_event="changed"})`,
			`sum(nexus_store_feed_events_total{` + sel + `, nexus_feed_event="reset"})`,
			`sum(nexus_store_feed_lag_seconds_count{` + sel + `})`,
			`sum(db_client_connection_max{` + sel + `})`,
		} {
			res, err := s.prom.query(q, at)
			if err != nil || len(res) != 1 || !(res[0].Value > 0) {
				t.Errorf("%s = %s (%v), want a positive value", q, formatSamples(res), err)
				continue
			}
			t.Logf("%s = %v", q, res[0].Value)
		}
		q := fmt.Sprintf(`histogram_quantile(0.99, sum by (le) (nexus_store_feed_lag_seconds_bucket{job="nexus-demo", instance=%q}))`, name)
		if res, err := s.prom.query(q, at); err == nil && len(res) == 1 {
			t.Logf("%s: feed lag p99 about %.2gs (bucket bound)", name, res[0].Value)
		}
	}
}

package nexusotel_test

import (
	"context"
	"testing"
	"testing/synctest"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/nexusstore/nexus/nexusotel"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

// pooled is a memory backend that reports a connection pool, as
// store/postgres does.
type pooled struct {
	*memory.Backend[item, string]
}

func (pooled) ConnPoolStats() store.ConnPoolStats {
	return store.ConnPoolStats{Max: 10, Idle: 3, Used: 2, Timeouts: 7}
}

// Two stores over one backend with a change feed: the second hears the
// first's writes. Its feed events (with their lag), its remote
// invalidations and its backend's pool reach OpenTelemetry.
func TestFeedAndPoolInstruments(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		p := newSDKPipeline(t, nil)
		b := pooled{memory.New[item, string](memory.WithChangeFeed())}
		open := func(name string) *store.Store[item, string] {
			s, err := store.New[item, string](b, store.Config[item, string]{IDOf: itemID, Name: name, MetricsReporter: p.rep})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close(ctx) })
			return s
		}
		writer, reader := open("writer"), open("reader")
		if _, err := writer.Save(ctx, item{ID: "u1"}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if _, err := reader.Get(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
		reader.Invalidate("u1") // a local invalidation
		if _, err := reader.Get(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
		if _, err := writer.Save(ctx, item{ID: "u1", N: 1}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the reader hears it, drops its entry

		ms := collect(t, p.export)
		readerSet := func(kvs ...attribute.KeyValue) attribute.Set {
			return attribute.NewSet(append([]attribute.KeyValue{nexusotel.KeyStoreName.String("reader")}, kvs...)...)
		}
		sum := func(name string, set attribute.Set) int64 {
			t.Helper()
			data, ok := ms[name].Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s: %T", name, ms[name].Data)
			}
			for _, dp := range data.DataPoints {
				if dp.Attributes.Equals(&set) {
					return dp.Value
				}
			}
			return -1
		}
		inv := nexusotel.KeyCacheEvent.String("invalidation")
		if n := sum(nexusotel.MetricCacheEvents, readerSet(inv, nexusotel.KeyCacheOrigin.String("remote"))); n != 1 {
			t.Errorf("remote invalidations: %d, want 1", n)
		}
		if n := sum(nexusotel.MetricCacheEvents, readerSet(inv, nexusotel.KeyCacheOrigin.String("local"))); n != 1 {
			t.Errorf("local invalidations: %d, want 1", n)
		}
		// The reader heard both of the writer's saves (and its own nothing).
		if n := sum(nexusotel.MetricFeedEvents, readerSet(nexusotel.KeyFeedEvent.String("changed"))); n != 2 {
			t.Errorf("changes heard: %d, want 2", n)
		}
		if n := sum(nexusotel.MetricFeedEvents, readerSet(nexusotel.KeyFeedEvent.String("reset"))); n != 1 {
			t.Errorf("resets: %d, want 1", n)
		}
		lag, ok := ms[nexusotel.MetricFeedLag].Data.(metricdata.Histogram[float64])
		if !ok || len(lag.DataPoints) == 0 || lag.DataPoints[0].Count == 0 {
			t.Errorf("feed lag: %+v", ms[nexusotel.MetricFeedLag].Data)
		}
		conn := func(state string) attribute.Set {
			return readerSet(attribute.String("db.client.connection.state", state), attribute.String("db.client.connection.pool.name", "reader"))
		}
		if sum(nexusotel.MetricConnCount, conn("idle")) != 3 || sum(nexusotel.MetricConnCount, conn("used")) != 2 ||
			sum(nexusotel.MetricConnMax, readerSet()) != 10 || sum(nexusotel.MetricConnTimeouts, readerSet()) != 7 {
			t.Errorf("pool gauges: count %+v, max %+v, timeouts %+v",
				ms[nexusotel.MetricConnCount].Data, ms[nexusotel.MetricConnMax].Data, ms[nexusotel.MetricConnTimeouts].Data)
		}
		st := reader.Stats()
		if st.CacheEvents[store.CacheInvalidation] != 2 {
			t.Errorf("reader's Stats count %d invalidations, want 2", st.CacheEvents[store.CacheInvalidation])
		}
	})
}

package nexusotel_test

import (
	"context"
	"testing"

	"github.com/nexusstore/nexus/reporters"
	"github.com/nexusstore/nexus/reporters/reportertest"
	"github.com/nexusstore/nexus/store"
)

// Behind the reporters package's wrappers, the reporter keeps its
// capabilities: per-store binding, spans and stats.
func TestBehindWrappers(t *testing.T) {
	wrappers := []struct {
		name string
		wrap func(t *testing.T, r store.MetricsReporter) store.MetricsReporter
	}{
		{"Multi", func(t *testing.T, r store.MetricsReporter) store.MetricsReporter {
			return reporters.Multi(r, reportertest.New())
		}},
		{"Buffered", func(t *testing.T, r store.MetricsReporter) store.MetricsReporter {
			b := reporters.NewBuffered(r)
			t.Cleanup(func() { _ = b.Close(context.Background()) })
			return b
		}},
	}
	for _, w := range wrappers {
		t.Run(w.name, func(t *testing.T) {
			tr := newTracing(t)
			s, _ := newStore(t, "users", w.wrap(t, tr.rep))
			ctx, req := tr.request()
			if _, err := s.Save(ctx, item{ID: "a"}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, "a"); err != nil {
				t.Fatal(err)
			}
			req.End()
			if err := s.Close(context.Background()); err != nil { // flushes a buffer
				t.Fatal(err)
			}
			st := s.Stats()
			equalMaps(t, "OperationCounts", st.OperationCounts, map[store.OperationType]int64{store.OpSave: 1, store.OpGet: 1})
			if st.CacheHitRate != 1 {
				t.Errorf("hit rate %v", st.CacheHitRate)
			}
			spans := tr.ended(t)
			for _, name := range []string{"nexus.store save", "nexus.store.backend save", "nexus.store get"} {
				if spans[name] == nil {
					t.Errorf("no span %q in %v", name, spanNames(tr.spans.Ended()))
				}
			}
		})
	}
}

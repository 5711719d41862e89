package nexusotel_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/nexusstore/nexus/nexusotel"
	"github.com/nexusstore/nexus/store"
)

type tracing struct {
	tp      *sdktrace.TracerProvider
	spans   *tracetest.SpanRecorder
	metrics *sdkmetric.ManualReader
	rep     *nexusotel.Reporter
}

func newTracing(t *testing.T, opts ...nexusotel.Option) *tracing {
	t.Helper()
	tr := &tracing{spans: tracetest.NewSpanRecorder(), metrics: sdkmetric.NewManualReader()}
	tr.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tr.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(tr.metrics))
	t.Cleanup(func() {
		_ = tr.tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	rep, err := nexusotel.NewReporter(append([]nexusotel.Option{
		nexusotel.WithTracerProvider(tr.tp), nexusotel.WithMeterProvider(mp),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	tr.rep = rep
	return tr
}

// request starts the caller's span.
func (tr *tracing) request() (context.Context, trace.Span) {
	return tr.tp.Tracer("test").Start(context.Background(), "request")
}

// ended returns the ended spans by name; it fails on a repeated name.
func (tr *tracing) ended(t *testing.T) map[string]sdktrace.ReadOnlySpan {
	t.Helper()
	out := make(map[string]sdktrace.ReadOnlySpan)
	for _, s := range tr.spans.Ended() {
		if _, dup := out[s.Name()]; dup {
			t.Fatalf("two spans named %q", s.Name())
		}
		out[s.Name()] = s
	}
	return out
}

func hasAttrs(t *testing.T, s sdktrace.ReadOnlySpan, want ...attribute.KeyValue) {
	t.Helper()
	got := attribute.NewSet(s.Attributes()...)
	for _, kv := range want {
		if v, ok := got.Value(kv.Key); !ok || v != kv.Value {
			t.Errorf("span %q: %s = %v (present %v), want %v", s.Name(), kv.Key, v.String(), ok, kv.Value.String())
		}
	}
}

func isChild(t *testing.T, child, parent sdktrace.ReadOnlySpan) {
	t.Helper()
	if child.Parent().SpanID() != parent.SpanContext().SpanID() || child.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("span %q is not a child of %q", child.Name(), parent.Name())
	}
}

func TestSpanTree(t *testing.T) {
	tr := newTracing(t)
	s, _ := newStore(t, "users", tr.rep)
	cases := []struct {
		name     string
		run      func(ctx context.Context) error
		op       string
		backend  string
		policy   string
		cacheRes string
	}{
		{"get miss reads through", func(ctx context.Context) error {
			_, err := s.Get(ctx, "absent")
			if err != nil && !isNotFound(err) {
				return err
			}
			return nil
		}, "nexus.store get", "nexus.store.backend get", "cache_first", "miss"},
		{"save writes through", func(ctx context.Context) error {
			_, err := s.Save(ctx, item{ID: "a"})
			return err
		}, "nexus.store save", "nexus.store.backend save", "cache_and_network", ""},
		{"get all lists", func(ctx context.Context) error {
			_, err := s.GetAll(ctx)
			return err
		}, "nexus.store get_all", "nexus.store.backend get_all", "cache_first", "miss"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr.spans.Reset()
			ctx, req := tr.request()
			if err := c.run(ctx); err != nil {
				t.Fatal(err)
			}
			req.End()
			spans := tr.ended(t)
			if len(spans) != 3 {
				t.Fatalf("spans %v, want request, operation, backend call", spanNames(tr.spans.Ended()))
			}
			op, be, rq := spans[c.op], spans[c.backend], spans["request"]
			if op == nil || be == nil {
				t.Fatalf("spans %v, want %q and %q", spanNames(tr.spans.Ended()), c.op, c.backend)
			}
			isChild(t, op, rq)
			isChild(t, be, op)
			// The memory backend works in-process and is no database: its
			// calls are INTERNAL spans without db.* attributes.
			if op.SpanKind() != trace.SpanKindInternal || be.SpanKind() != trace.SpanKindInternal {
				t.Errorf("kinds %v, %v", op.SpanKind(), be.SpanKind())
			}
			want := []attribute.KeyValue{
				nexusotel.KeyStoreName.String("users"),
				nexusotel.KeyOperation.String(c.op[len("nexus.store "):]),
				nexusotel.KeyPolicy.String(c.policy),
			}
			if c.cacheRes != "" {
				want = append(want, nexusotel.KeyCacheResult.String(c.cacheRes))
			}
			hasAttrs(t, op, want...)
			hasAttrs(t, be,
				nexusotel.KeyStoreName.String("users"),
				nexusotel.KeyOperation.String(c.backend[len("nexus.store.backend "):]))
			for _, kv := range be.Attributes() {
				if strings.HasPrefix(string(kv.Key), "db.") {
					t.Errorf("memory backend span has %s", kv.Key)
				}
			}
			for _, sp := range []sdktrace.ReadOnlySpan{op, be} {
				if sp.Status().Code != codes.Unset {
					t.Errorf("span %q status %v (a not-found read is not an error)", sp.Name(), sp.Status())
				}
				if sc := sp.InstrumentationScope(); sc.Name != nexusotel.ScopeName || sc.Version != nexusotel.Version() || sc.SchemaURL != nexusotel.SchemaURL {
					t.Errorf("scope %+v", sp.InstrumentationScope())
				}
			}
		})
	}
}

func spanNames(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

func TestSpanOfFailure(t *testing.T) {
	tr := newTracing(t)
	s, b := newStore(t, "users", tr.rep)
	b.FailNext(1, nil)
	ctx, req := tr.request()
	if _, err := s.Get(ctx, "b"); err == nil {
		t.Fatal("no error")
	}
	req.End()
	spans := tr.ended(t)
	for _, name := range []string{"nexus.store get", "nexus.store.backend get"} {
		sp := spans[name]
		if sp == nil {
			t.Fatalf("no span %q", name)
		}
		if sp.Status().Code != codes.Error {
			t.Errorf("%s: status %v", name, sp.Status())
		}
		hasAttrs(t, sp, nexusotel.KeyErrorType.String("store.ErrUnavailable"))
		if len(sp.Events()) != 1 || sp.Events()[0].Name != "exception" {
			t.Errorf("%s: events %v, want the recorded error", name, sp.Events())
		}
	}
}

func TestNoSpanForUntracedCalls(t *testing.T) {
	tr := newTracing(t)
	s, _ := newStore(t, "users", tr.rep)
	ctx := context.Background()
	if _, err := s.Save(ctx, item{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "absent"); !isNotFound(err) {
		t.Fatal(err)
	}
	if n := len(tr.spans.Started()); n != 0 {
		t.Errorf("%d spans started for untraced calls: %v", n, spanNames(tr.spans.Ended()))
	}
}

func TestRootSpans(t *testing.T) {
	tr := newTracing(t, nexusotel.WithRootSpans())
	s, _ := newStore(t, "users", tr.rep)
	if _, err := s.Get(context.Background(), "absent"); !isNotFound(err) {
		t.Fatal(err)
	}
	spans := tr.ended(t)
	op, be := spans["nexus.store get"], spans["nexus.store.backend get"]
	if op == nil || be == nil {
		t.Fatalf("spans %v", spanNames(tr.spans.Ended()))
	}
	if op.Parent().IsValid() {
		t.Error("the operation span has a parent")
	}
	isChild(t, be, op)
}

func TestWithoutCacheSpans(t *testing.T) {
	tr := newTracing(t, nexusotel.WithoutCacheSpans())
	s, _ := newStore(t, "users", tr.rep)
	ctx, req := tr.request()
	if _, err := s.Save(ctx, item{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a"); err != nil { // a hit: no span at all
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "absent"); !isNotFound(err) { // a miss: only its backend call
		t.Fatal(err)
	}
	req.End()
	spans := tr.ended(t)
	if len(spans) != 4 || spans["nexus.store get"] != nil {
		t.Fatalf("spans %v, want request, save, its backend call, and the get's backend call", spanNames(tr.spans.Ended()))
	}
	isChild(t, spans["nexus.store.backend get"], spans["request"])
	isChild(t, spans["nexus.store save"], spans["request"])
}

func TestWithoutTracing(t *testing.T) {
	tr := newTracing(t, nexusotel.WithoutTracing())
	s, _ := newStore(t, "users", tr.rep)
	ctx, req := tr.request()
	if _, err := s.Save(ctx, item{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	req.End()
	if names := spanNames(tr.spans.Ended()); len(names) != 1 {
		t.Errorf("spans %v, want only the request", names)
	}
	// The backend duration is a metric, kept without tracing.
	var rm metricdata.ResourceMetrics
	if err := tr.metrics.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	if !hasMetric(rm, nexusotel.MetricBackendDuration) {
		t.Error("no backend duration without tracing")
	}
}

func hasMetric(rm metricdata.ResourceMetrics, name string) bool {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return true
			}
		}
	}
	return false
}

// A background refresh is a root span linked to the operation that
// scheduled it.
func TestBackgroundRefreshLinks(t *testing.T) {
	tr := newTracing(t)
	s, _ := newStore(t, "users", tr.rep)
	if _, err := s.Save(context.Background(), item{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	ctx, req := tr.request()
	if _, err := s.Get(ctx, "a", store.WithFetchPolicy(store.FetchCacheAndNetwork)); err != nil {
		t.Fatal(err)
	}
	req.End()
	if err := s.Close(context.Background()); err != nil { // waits for the refresh
		t.Fatal(err)
	}
	spans := tr.ended(t)
	op, refresh := spans["nexus.store get"], spans["nexus.store.backend get"]
	if op == nil || refresh == nil {
		t.Fatalf("spans %v", spanNames(tr.spans.Ended()))
	}
	isChild(t, op, spans["request"])
	if refresh.Parent().IsValid() {
		t.Error("the refresh span has a parent; want a root span")
	}
	if l := refresh.Links(); len(l) != 1 || l[0].SpanContext.SpanID() != op.SpanContext().SpanID() {
		t.Errorf("refresh links %+v, want the get span", l)
	}
}

// The final sync of Close runs under the caller's context: a child of its
// span, with the pushes under it.
func TestCloseSyncIsChildOfCaller(t *testing.T) {
	tr := newTracing(t)
	s, _ := newStore(t, "users", tr.rep)
	if _, err := s.Save(context.Background(), item{ID: "a"}, store.WithWritePolicy(store.WriteCacheFirst)); err != nil {
		t.Fatal(err)
	}
	ctx, req := tr.request()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	req.End()
	spans := tr.ended(t)
	sync, push := spans["nexus.store sync"], spans["nexus.store.backend save"]
	if sync == nil || push == nil {
		t.Fatalf("spans %v", spanNames(tr.spans.Ended()))
	}
	isChild(t, sync, spans["request"])
	isChild(t, push, sync)
}

// The interval sync has no caller: it is a root span, its pushes under it.
func TestIntervalSyncIsRoot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := newTracing(t)
		s, _ := newStore(t, "users", tr.rep, func(c *store.Config[item, string]) { c.SyncInterval = time.Minute })
		if _, err := s.Save(context.Background(), item{ID: "a"}, store.WithWritePolicy(store.WriteCacheFirst)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		spans := tr.ended(t)
		sync, push := spans["nexus.store sync"], spans["nexus.store.backend save"]
		if sync == nil || push == nil {
			t.Fatalf("spans %v", spanNames(tr.spans.Ended()))
		}
		if sync.Parent().IsValid() {
			t.Error("the interval sync span has a parent")
		}
		isChild(t, push, sync)
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// Histogram records carry the operation's context: exemplars point at the
// operation's span.
func TestExemplarsLinkToSpans(t *testing.T) {
	tr := newTracing(t)
	s, _ := newStore(t, "users", tr.rep)
	ctx, req := tr.request()
	if _, err := s.Save(ctx, item{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	req.End()
	op := tr.ended(t)["nexus.store save"]
	var rm metricdata.ResourceMetrics
	if err := tr.metrics.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != nexusotel.MetricOperationDuration {
				continue
			}
			ex := m.Data.(metricdata.Histogram[float64]).DataPoints[0].Exemplars
			if len(ex) != 1 {
				t.Fatalf("exemplars %+v", ex)
			}
			sc := op.SpanContext()
			if id := sc.SpanID(); !bytes.Equal(ex[0].SpanID, id[:]) {
				t.Errorf("exemplar span %x, want the save span %s", ex[0].SpanID, op.SpanContext().SpanID())
			}
			return
		}
	}
	t.Fatal("no operation histogram")
}

package nexusotel_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/nexusstore/nexus/nexusotel"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
	"github.com/nexusstore/nexus/store/sqlite"
)

// Issue 10, item 4: with no WithTracerProvider, the store's spans are made
// by the provider of the caller's span (an application's own, not
// installed globally), as otelhttp does; they are not lost to the global
// no-op provider.
func TestSpansFromTheCallersProvider(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	appTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = appTP.Shutdown(context.Background()) })
	rep := mustReporter(t) // global providers: none installed
	s, _ := newStore(t, "users", rep)
	ctx, req := appTP.Tracer("app").Start(context.Background(), "request")
	if _, err := s.Save(ctx, item{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	req.End()
	got := spanNames(rec.Ended())
	if len(got) != 3 || !strings.Contains(strings.Join(got, ","), "nexus.store save") {
		t.Errorf("the application's provider recorded %v, want request, nexus.store save and its backend call", got)
	}
	// A remote parent (extracted from a request) has no provider: the
	// global one is used, and nothing breaks.
	remote := trace.ContextWithRemoteSpanContext(context.Background(), req.SpanContext())
	if _, err := s.Get(remote, "a"); err != nil {
		t.Fatal(err)
	}
}

// describedBackend is a memory backend that describes itself as a
// networked database.
type describedBackend struct {
	*memory.Backend[item, string]
	info store.BackendInfo
}

func (b describedBackend) BackendInfo() store.BackendInfo { return b.info }

// Issue 10, item 6: backend call spans follow the database semantic
// conventions: db.system.name, db.collection.name (the table, not the
// store), the span name "{db.operation.name} {target}", server.address and
// server.port for a networked backend, CLIENT spans for databases and
// INTERNAL spans for in-process backends.
func TestBackendSpansFollowDatabaseConventions(t *testing.T) {
	sq, err := sqlite.Open[item, string](filepath.Join(t.TempDir(), "db.sqlite"), sqlite.WithTable("user_rows"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	cases := []struct {
		name    string
		backend store.Backend[item, string]
		span    string
		kind    trace.SpanKind
		want    []attribute.KeyValue
		absent  []attribute.Key
	}{
		{"sqlite", sq, "get user_rows", trace.SpanKindClient, []attribute.KeyValue{
			attribute.String("db.system.name", "sqlite"),
			attribute.String("db.collection.name", "user_rows"),
			attribute.String("db.operation.name", "get"),
		}, []attribute.Key{"server.address"}},
		{"networked", describedBackend{memory.New[item, string](), store.BackendInfo{
			System: "postgresql", Collection: "accounts", Namespace: "shop", ServerAddress: "db.internal", ServerPort: 5432,
		}}, "get accounts", trace.SpanKindClient, []attribute.KeyValue{
			attribute.String("db.system.name", "postgresql"),
			attribute.String("db.collection.name", "accounts"),
			attribute.String("db.namespace", "shop"),
			attribute.String("server.address", "db.internal"),
			attribute.Int("server.port", 5432),
		}, nil},
		{"memory", memory.New[item, string](), "nexus.store.backend get", trace.SpanKindInternal, []attribute.KeyValue{
			nexusotel.KeyOperation.String("get"),
		}, []attribute.Key{"db.system.name", "db.collection.name", "db.operation.name"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := newTracing(t)
			s, err := store.New(c.backend, store.Config[item, string]{IDOf: itemID, Name: "users", MetricsReporter: tr.rep})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close(context.Background()) })
			ctx, req := tr.request()
			if _, err := s.Get(ctx, "absent"); !isNotFound(err) {
				t.Fatal(err)
			}
			req.End()
			sp := tr.ended(t)[c.span]
			if sp == nil {
				t.Fatalf("no span %q in %v", c.span, spanNames(tr.spans.Ended()))
			}
			if sp.SpanKind() != c.kind {
				t.Errorf("kind %v, want %v", sp.SpanKind(), c.kind)
			}
			hasAttrs(t, sp, append(c.want, nexusotel.KeyStoreName.String("users"))...)
			got := attribute.NewSet(sp.Attributes()...)
			for _, k := range c.absent {
				if got.HasValue(k) {
					t.Errorf("span has %s", k)
				}
			}
		})
	}
}

// Issue 10, item 7: an error's message carries item IDs; by default a span
// records its type only (error.type, the status description, the
// exception event), and WithSpanErrors decides otherwise.
func TestSpanErrorsCarryNoItemIDs(t *testing.T) {
	const id = "user-4242"
	fault := memory.WithFault(func(_ context.Context, op memory.Op, key any) error {
		return fmt.Errorf("replica lag reading %v: %w", key, store.ErrUnavailable)
	})
	check := func(t *testing.T, tr *tracing, wantMsg func(sdktrace.ReadOnlySpan) string) {
		t.Helper()
		s, err := store.New(memory.New[item, string](fault), store.Config[item, string]{IDOf: itemID, Name: "users", MetricsReporter: tr.rep})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(context.Background()) })
		ctx, req := tr.request()
		if _, err := s.Get(ctx, id); err == nil || !strings.Contains(err.Error(), id) {
			t.Fatalf("error %v: the test needs an ID in the message", err)
		}
		req.End()
		for _, name := range []string{"nexus.store get", "nexus.store.backend get"} {
			sp := tr.ended(t)[name]
			if sp == nil {
				t.Fatalf("no span %q", name)
			}
			hasAttrs(t, sp, nexusotel.KeyErrorType.String("store.ErrUnavailable"))
			want := wantMsg(sp)
			if sp.Status().Code != codes.Error || sp.Status().Description != want {
				t.Errorf("%s: status %v, want error %q", name, sp.Status(), want)
			}
			if len(sp.Events()) != 1 || sp.Events()[0].Name != "exception" {
				t.Fatalf("%s: events %v", name, sp.Events())
			}
			ev := attribute.NewSet(sp.Events()[0].Attributes...)
			if v, _ := ev.Value("exception.type"); v.AsString() != "store.ErrUnavailable" {
				t.Errorf("%s: exception.type %q", name, v.AsString())
			}
			if v, _ := ev.Value("exception.message"); v.AsString() != want {
				t.Errorf("%s: exception.message %q, want %q", name, v.AsString(), want)
			}
		}
	}
	t.Run("default", func(t *testing.T) {
		tr := newTracing(t)
		check(t, tr, func(sdktrace.ReadOnlySpan) string { return "store.ErrUnavailable" })
		for _, sp := range tr.spans.Ended() {
			if strings.Contains(fmt.Sprint(sp.Status(), sp.Events(), sp.Attributes()), id) {
				t.Errorf("span %q carries the item ID", sp.Name())
			}
		}
	})
	t.Run("hook", func(t *testing.T) {
		var seen []error
		tr := newTracing(t, nexusotel.WithSpanErrors(func(err error) string {
			seen = append(seen, err)
			return strings.ReplaceAll(err.Error(), id, "<id>")
		}))
		check(t, tr, func(sdktrace.ReadOnlySpan) string {
			return strings.ReplaceAll(seen[0].Error(), id, "<id>")
		})
		if len(seen) == 0 || !strings.Contains(seen[0].Error(), id) {
			t.Errorf("the hook saw %v", seen)
		}
	})
}

// The options otelhttp, otelsql and redisotel users ask for most: a
// per-operation filter, a span-name formatter, static attributes on spans
// as on metrics.
func TestSpanOptions(t *testing.T) {
	var infos []nexusotel.SpanInfo
	tr := newTracing(t,
		nexusotel.WithSpanFilter(func(si nexusotel.SpanInfo) bool {
			infos = append(infos, si)
			return si.Operation != store.OpGet || si.BackendCall // no span for Get itself
		}),
		nexusotel.WithSpanNameFormatter(func(si nexusotel.SpanInfo) string {
			if si.BackendCall {
				return "" // the default
			}
			return si.Store + "." + si.Operation.String()
		}),
		nexusotel.WithAttributes(attribute.String("deployment.environment.name", "test")),
	)
	s, _ := newStore(t, "users", tr.rep)
	ctx, req := tr.request()
	if _, err := s.Save(ctx, item{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "absent"); !isNotFound(err) {
		t.Fatal(err)
	}
	req.End()
	spans := tr.ended(t)
	if len(spans) != 4 || spans["users.save"] == nil || spans["nexus.store.backend save"] == nil ||
		spans["nexus.store.backend get"] == nil || spans["users.get"] != nil {
		t.Fatalf("spans %v, want request, users.save, and both backend calls", spanNames(tr.spans.Ended()))
	}
	isChild(t, spans["nexus.store.backend get"], spans["request"])
	for _, name := range []string{"users.save", "nexus.store.backend save"} {
		hasAttrs(t, spans[name], attribute.String("deployment.environment.name", "test"))
	}
	if len(infos) == 0 || infos[0].Store != "users" || !infos[0].Backend.InProcess {
		t.Errorf("filter saw %+v", infos)
	}
}

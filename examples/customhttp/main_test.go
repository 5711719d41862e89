package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/nexusstore/nexus/reporters"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

// endpoint is an httptest server that records the batches it accepts and
// fails the requests it is told to.
type endpoint struct {
	mu      sync.Mutex
	batches []Batch
	fail    int // how many requests to answer 503
	srv     *httptest.Server
}

func newEndpoint(t *testing.T) *endpoint {
	e := &endpoint{}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.fail > 0 {
			e.fail--
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("content type %q", r.Header.Get("Content-Type"))
		}
		var b Batch
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			t.Errorf("bad body: %v", err)
		}
		e.batches = append(e.batches, b)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *endpoint) names() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, b := range e.batches {
		for _, m := range b.Metrics {
			out = append(out, b.Store+" "+m.Kind+" "+m.Name)
		}
	}
	return out
}

func newUsers(t *testing.T, r store.MetricsReporter) *store.Store[User, string] {
	s, err := store.New(memory.New[User, string](), store.Config[User, string]{
		IDOf: func(u User) string { return u.ID }, MetricsReporter: r,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBatchesReachTheEndpoint(t *testing.T) {
	ctx := context.Background()
	e := newEndpoint(t)
	buffered := reporters.NewBuffered(NewHTTPReporter(e.srv.URL), reporters.WithBufferSize(3))
	users := newUsers(t, buffered)
	if _, err := users.Save(ctx, User{ID: "u1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := users.Get(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if err := users.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := buffered.Close(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"user cache write", "user operation save", "user cache hit", "user operation get"}
	if got := e.names(); !slices.Equal(got, want) {
		t.Errorf("endpoint got %q, want %q", got, want)
	}
	// A buffer of 3 metrics: one request when it filled, one at Close.
	if len(e.batches) != 2 {
		t.Errorf("%d requests, want 2", len(e.batches))
	}
	m := e.batches[1].Metrics[0]
	if m.CacheResult != "hit" || m.Success == nil || !*m.Success || m.Policy != "cache_first" || m.Time == "" {
		t.Errorf("get metric = %+v", m)
	}
}

// A failing endpoint loses nothing: the batch is sent again at the next
// flush, and the store's operations never fail because of it.
func TestEndpointDownKeepsMetrics(t *testing.T) {
	ctx := context.Background()
	e := newEndpoint(t)
	e.fail = 1
	var errs []error
	var mu sync.Mutex
	buffered := reporters.NewBuffered(NewHTTPReporter(e.srv.URL), reporters.WithErrorHandler(func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}))
	users := newUsers(t, buffered)
	if _, err := users.Save(ctx, User{ID: "u1"}); err != nil {
		t.Fatalf("Save failed because of the metrics endpoint: %v", err)
	}
	_ = buffered.Flush(ctx) // the request fails: kept for the next one
	mu.Lock()
	if len(errs) != 1 {
		t.Errorf("error handler got %v, want the failed request", errs)
	}
	mu.Unlock()
	if _, err := users.Get(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if err := users.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := buffered.Close(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"user cache write", "user operation save", "user cache hit", "user operation get"}
	if got := e.names(); !slices.Equal(got, want) {
		t.Errorf("endpoint got %q, want %q", got, want)
	}
}

func TestUnreachableEndpointNeverFailsTheStore(t *testing.T) {
	ctx := context.Background()
	buffered := reporters.NewBuffered(NewHTTPReporter("http://127.0.0.1:1"), reporters.WithErrorHandler(func(error) {}))
	users := newUsers(t, buffered)
	for range 500 {
		if _, err := users.Save(ctx, User{ID: "u1"}); err != nil {
			t.Fatal(err)
		}
	}
	_ = users.Close(ctx) // the flush error is reported, the store closes
	_ = buffered.Close(ctx)
}

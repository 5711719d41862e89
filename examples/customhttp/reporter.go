package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nexusstore/nexus/store"
)

// Metric is one metric as the endpoint receives it.
type Metric struct {
	Kind        string  `json:"kind"` // operation, cache, sync, error
	Name        string  `json:"name"` // get, hit, completed...
	DurationMS  float64 `json:"duration_ms,omitempty"`
	Success     *bool   `json:"success,omitempty"`
	Items       int     `json:"items,omitempty"`
	Policy      string  `json:"policy,omitempty"`
	CacheResult string  `json:"cache_result,omitempty"`
	ErrorType   string  `json:"error_type,omitempty"`
	Recoverable bool    `json:"recoverable,omitempty"`
	SampleRate  float64 `json:"sample_rate,omitempty"`
	Time        string  `json:"time"`
}

// Batch is the body of one POST.
type Batch struct {
	Store   string   `json:"store"`
	Metrics []Metric `json:"metrics"`
}

// HTTPReporter collects metrics and POSTs them as one JSON batch per Flush.
// Its report methods only append to a slice; put it behind
// reporters.NewBuffered, which calls them off the caller's goroutine and
// calls Flush after each buffer, so that each buffer becomes one request.
type HTTPReporter struct {
	url    string
	client *http.Client
	store  string
	// max bounds what is kept while the endpoint is down; beyond it the
	// oldest metrics go, counted in dropped.
	max int

	mu      sync.Mutex
	pending []Metric
	dropped int
}

// NewHTTPReporter posts to url with a 5s timeout per request.
func NewHTTPReporter(url string) *HTTPReporter {
	return &HTTPReporter{url: url, client: &http.Client{Timeout: 5 * time.Second}, max: 10000}
}

// Bind gives each store its own reporter, so that batches name their store.
// It asks for no item IDs: they are not sent.
func (r *HTTPReporter) Bind(info store.StoreInfo) store.Binding {
	return store.Binding{Reporter: &HTTPReporter{url: r.url, client: r.client, store: info.Name, max: r.max}}
}

func (r *HTTPReporter) add(m Metric, t time.Time) {
	m.Time = t.UTC().Format(time.RFC3339Nano)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) >= r.max {
		r.pending = r.pending[1:]
		r.dropped++
	}
	r.pending = append(r.pending, m)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (r *HTTPReporter) ReportOperation(_ context.Context, m store.OperationMetric) {
	ok := m.Success
	r.add(Metric{
		Kind: "operation", Name: m.Operation.String(), DurationMS: ms(m.Duration), Success: &ok,
		Items: m.ItemCount, Policy: m.Policy.String(), CacheResult: m.CacheResult.String(),
		ErrorType: store.ErrorType(m.Err), SampleRate: m.SampleRate,
	}, m.Timestamp)
}

func (r *HTTPReporter) ReportCacheEvent(_ context.Context, m store.CacheMetric) {
	r.add(Metric{Kind: "cache", Name: m.Event.String(), SampleRate: m.SampleRate}, m.Timestamp)
}

func (r *HTTPReporter) ReportSyncEvent(_ context.Context, m store.SyncMetric) {
	r.add(Metric{Kind: "sync", Name: m.Event.String(), DurationMS: ms(m.Duration), Items: m.ItemsSynced, ErrorType: store.ErrorType(m.Err)}, m.Timestamp)
}

func (r *HTTPReporter) ReportError(_ context.Context, m store.ErrorMetric) {
	r.add(Metric{Kind: "error", Name: m.Operation.String(), ErrorType: store.ErrorType(m.Err), Recoverable: m.Recoverable}, m.Timestamp)
}

// Flush POSTs what was collected. If the request fails, the metrics are
// kept for the next Flush and the error is returned (the buffered reporter
// passes it to its error handler).
func (r *HTTPReporter) Flush(ctx context.Context) error {
	r.mu.Lock()
	batch := Batch{Store: r.store, Metrics: r.pending}
	r.pending = nil
	r.mu.Unlock()
	if len(batch.Metrics) == 0 {
		return nil
	}
	err := r.post(ctx, batch)
	if err != nil {
		r.mu.Lock()
		r.pending = append(batch.Metrics, r.pending...)
		if over := len(r.pending) - r.max; over > 0 {
			r.pending = r.pending[over:]
			r.dropped += over
		}
		r.mu.Unlock()
	}
	return err
}

func (r *HTTPReporter) post(ctx context.Context, b Batch) error {
	body, err := json.Marshal(b)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("metrics endpoint: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("metrics endpoint: %s", resp.Status)
	}
	return nil
}

var (
	_ store.MetricsReporter = (*HTTPReporter)(nil)
	_ store.Binder          = (*HTTPReporter)(nil)
)

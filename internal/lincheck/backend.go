package lincheck

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nexusstore/nexus/store"
)

// Item is what the replica checker stores. Every write carries a token no
// other write carries, so a read names exactly the write it saw.
type Item struct {
	ID  string `json:"id"`
	Tok int64  `json:"tok"`
}

// ItemID is Config.IDOf for Item.
func ItemID(it Item) string { return it.ID }

// FeedBackend is a backend the replica checker runs stores over: versioned,
// with a change feed.
type FeedBackend interface {
	store.VersionedBackend[Item, string]
	store.ChangeFeed[string]
}

// errInjected is the failure Faults injects. It matches
// store.ErrUnavailable, as a lost connection's would.
var errInjected = fmt.Errorf("%w: lincheck: injected fault", store.ErrUnavailable)

// Faults injects latency and failures into the backend calls of every
// store of a history. A failure is raised before the call reaches the
// backend, so a failed call changed nothing; latency is added before the
// call and after it (a network's both ways), so that a read's answer can be
// on its way back while another store's write commits.
type Faults struct {
	rate       float64
	maxLatency time.Duration
	on         atomic.Bool
	injected   atomic.Int64
}

func newFaults(rate float64, maxLatency time.Duration) *Faults {
	f := &Faults{rate: rate, maxLatency: maxLatency}
	f.on.Store(true)
	return f
}

func (f *Faults) sleep(write bool) {
	d := f.maxLatency
	if d <= 0 || !f.on.Load() {
		return
	}
	if write {
		d *= 2
	}
	if d := rand.N(d); d > time.Microsecond {
		time.Sleep(d)
	}
}

func (f *Faults) before(write bool) error {
	if !f.on.Load() {
		return nil
	}
	f.sleep(write)
	if f.rate > 0 && rand.Float64() < f.rate {
		f.injected.Add(1)
		return errInjected
	}
	return nil
}

// probe records what became of the backend reads made for one caller (its
// context carries the probe): a network-first read whose own backend call
// succeeded was answered by the backend, not by its fallback to the cache.
type probe struct {
	ok, failed atomic.Bool
}

type probeKey struct{}

func withProbe(ctx context.Context) (context.Context, *probe) {
	p := &probe{}
	return context.WithValue(ctx, probeKey{}, p), p
}

func (p *probe) answered() bool { return p.ok.Load() && !p.failed.Load() }

// joined reports whether the caller made no backend call: a read through
// the backend then shared another caller's.
func (p *probe) joined() bool { return !p.ok.Load() && !p.failed.Load() }

// faultBackend is one store's view of the shared backend: the faults of the
// history, a probe of the caller's reads, and optionally no change feed (the
// demonstration that the checker catches a store that hears nothing).
type faultBackend struct {
	inner    FeedBackend
	f        *Faults
	hideFeed bool
}

var (
	_ store.VersionedBackend[Item, string] = (*faultBackend)(nil)
	_ store.ChangeFeed[string]             = (*faultBackend)(nil)
)

func readDone(ctx context.Context, err error) {
	if p, ok := ctx.Value(probeKey{}).(*probe); ok {
		if err == nil || errors.Is(err, store.ErrNotFound) {
			p.ok.Store(true)
		} else {
			p.failed.Store(true)
		}
	}
}

func (b *faultBackend) Get(ctx context.Context, id string) (Item, error) {
	v, err := b.GetVersioned(ctx, id)
	return v.Item, err
}

func (b *faultBackend) GetVersioned(ctx context.Context, id string) (v store.Versioned[Item], err error) {
	defer func() { readDone(ctx, err) }()
	if err := b.f.before(false); err != nil {
		return v, err
	}
	v, err = b.inner.GetVersioned(ctx, id)
	b.f.sleep(false)
	return v, err
}

func (b *faultBackend) GetAll(ctx context.Context, q store.Query[Item]) ([]Item, error) {
	vs, err := b.GetAllVersioned(ctx, q)
	items := make([]Item, len(vs))
	for i, v := range vs {
		items[i] = v.Item
	}
	return items, err
}

func (b *faultBackend) GetAllVersioned(ctx context.Context, q store.Query[Item]) (vs []store.Versioned[Item], err error) {
	defer func() { readDone(ctx, err) }()
	if err := b.f.before(false); err != nil {
		return nil, err
	}
	vs, err = b.inner.GetAllVersioned(ctx, q)
	b.f.sleep(false)
	return vs, err
}

func (b *faultBackend) Save(ctx context.Context, id string, it Item) (Item, error) {
	v, err := b.SaveVersioned(ctx, id, it, store.VersionAny)
	return v.Item, err
}

func (b *faultBackend) SaveVersioned(ctx context.Context, id string, it Item, expect uint64) (store.Versioned[Item], error) {
	if err := b.f.before(true); err != nil {
		return store.Versioned[Item]{}, err
	}
	v, err := b.inner.SaveVersioned(ctx, id, it, expect)
	b.f.sleep(true)
	return v, err
}

func (b *faultBackend) Delete(ctx context.Context, id string) (bool, error) {
	return b.DeleteVersioned(ctx, id, store.VersionAny)
}

func (b *faultBackend) DeleteVersioned(ctx context.Context, id string, expect uint64) (bool, error) {
	if err := b.f.before(true); err != nil {
		return false, err
	}
	ok, err := b.inner.DeleteVersioned(ctx, id, expect)
	b.f.sleep(true)
	return ok, err
}

func (b *faultBackend) Subscribe(fn func(store.FeedEvent[string])) (func(), error) {
	if b.hideFeed {
		return nil, fmt.Errorf("lincheck: this store's feed is hidden: %w", store.ErrNoChangeFeed)
	}
	return b.inner.Subscribe(fn)
}

// feedEvent is a change-feed event as one store applied it.
type feedEvent struct {
	kind store.FeedEventKind
	at   int64         // when the store reported it, on the history's clock
	lag  time.Duration // FeedChanged: commit to application
}

// feedRecorder is one store's MetricsReporter: it records the change-feed
// events the store applied (store.FeedReporter), and nothing else.
type feedRecorder struct {
	h       *history
	mu      sync.Mutex
	events  []feedEvent
	maxLag  time.Duration
	changes int
	resets  chan struct{} // one token per FeedReset, for waiting until the feed is live
}

var (
	_ store.MetricsReporter = (*feedRecorder)(nil)
	_ store.FeedReporter    = (*feedRecorder)(nil)
)

func newFeedRecorder(h *history) *feedRecorder {
	return &feedRecorder{h: h, resets: make(chan struct{}, 1024)}
}

func (r *feedRecorder) ReportOperation(context.Context, store.OperationMetric) {}
func (r *feedRecorder) ReportCacheEvent(context.Context, store.CacheMetric)    {}
func (r *feedRecorder) ReportSyncEvent(context.Context, store.SyncMetric)      {}
func (r *feedRecorder) ReportError(context.Context, store.ErrorMetric)         {}
func (r *feedRecorder) Flush(context.Context) error                            { return nil }

func (r *feedRecorder) ReportFeedEvent(_ context.Context, m store.FeedMetric) {
	at := r.h.now()
	r.mu.Lock()
	r.events = append(r.events, feedEvent{kind: m.Event, at: at, lag: m.Lag})
	if m.Event == store.FeedChanged {
		r.changes++
		r.maxLag = max(r.maxLag, m.Lag)
	}
	r.mu.Unlock()
	if m.Event == store.FeedReset {
		select {
		case r.resets <- struct{}{}:
		default:
		}
	}
}

// snapshot returns the events so far and the largest lag.
func (r *feedRecorder) snapshot() ([]feedEvent, time.Duration, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]feedEvent(nil), r.events...), r.maxLag, r.changes
}

// live reports whether the store's feed is live: its last feed event was
// not an error (a reset or a change follows every error once the feed is
// back).
func (r *feedRecorder) live() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.events) - 1; i >= 0; i-- {
		switch r.events[i].kind {
		case store.FeedError:
			return false
		case store.FeedReset:
			return true
		}
	}
	return false // not connected yet
}

package store_test

// Shared pieces of the randomized checkers (linearizability_test.go,
// durability_test.go, property_test.go): the item they write, the time
// budget, fault injection, a backend wrapper that stamps a server-set field,
// and a reporter that counts sync events without serializing the store's
// goroutines on a lock.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nexusstore/nexus/internal/lincheck"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

// ckItem is what the checkers store. Every write carries a token no other
// write carries, so a read names exactly the write it saw.
type ckItem struct {
	ID  string `json:"id"`
	Tok int64  `json:"tok"`
	// Srv is set by stampBackend on every save, as a server sets an
	// updated-at column: the store must show it (and tell watchers) once the
	// backend returned it.
	Srv int64 `json:"srv,omitempty"`
}

func ckID(it ckItem) string { return it.ID }

// tokens hands out write tokens; 0 means "absent" in the models.
var tokens atomic.Int64

func nextTok() int64 { return tokens.Add(1) }

// checkBudget returns how long a checker keeps generating histories: def in
// the default mode (a quarter of it with -short), or share of the duration
// in NEXUS_CHECK_LONG (see lincheck.Budget). It never runs into the test
// binary's -timeout.
func checkBudget(t testing.TB, def time.Duration, share float64) time.Duration {
	t.Helper()
	return lincheck.Budget(t, def, share)
}

// faults injects latency and failures into backend calls. A failure is
// raised before the backend applies anything (memory.WithFault runs before
// the operation), so a failed call changed nothing.
type faults struct {
	rate       float64       // probability that a call fails
	maxLatency time.Duration // each call waits a random time below it
	// slowWrites makes saves and deletes wait up to three times longer, so
	// that reads fit inside a failing write's backend call.
	slowWrites bool
	on         atomic.Bool
	injected   atomic.Int64
}

func newFaults(rate float64, maxLatency time.Duration) *faults {
	f := &faults{rate: rate, maxLatency: maxLatency}
	f.on.Store(true)
	return f
}

// hook is a memory.WithFault function.
func (f *faults) hook(_ context.Context, op memory.Op, _ any) error {
	if !f.on.Load() {
		return nil
	}
	if d := f.maxLatency; d > 0 {
		if f.slowWrites && (op == memory.OpSave || op == memory.OpDelete) {
			d *= 3
		}
		if d := rand.N(d); d > time.Microsecond {
			time.Sleep(d)
		}
	}
	if f.rate > 0 && rand.Float64() < f.rate {
		f.injected.Add(1)
		return fmt.Errorf("%w: checker: injected fault in %s", store.ErrUnavailable, op)
	}
	return nil
}

// stampBackend wraps a versioned backend: every save sets Srv to a fresh
// number before the item is stored (a server-stamped field), and hook, if
// set, runs before each call (for backends without memory.WithFault). It
// counts the calls it started and finished, and those made for a caller
// whose context was marked with foreground (background work, such as a
// refresh, runs under the store's own context). It has no transactions;
// txStampBackend adds them.
type stampBackend struct {
	store.VersionedBackend[ckItem, string]
	hook               func(ctx context.Context, op memory.Op, id any) error
	srv                atomic.Int64
	started, finished  atomic.Int64
	foregroundCalls    atomic.Int64
	unavailableResults atomic.Int64 // calls that failed with ErrUnavailable
}

type foregroundKey struct{}

// foreground marks ctx as a caller's, for stampBackend's count.
func foreground(ctx context.Context) context.Context {
	return context.WithValue(ctx, foregroundKey{}, true)
}

var (
	_ store.VersionedBackend[ckItem, string] = (*stampBackend)(nil)
	_ store.TxBackend[ckItem, string]        = (*txStampBackend)(nil)
)

func (b *stampBackend) before(ctx context.Context, op memory.Op, id any) error {
	b.started.Add(1)
	if ctx.Value(foregroundKey{}) != nil {
		b.foregroundCalls.Add(1)
	}
	if b.hook == nil {
		return nil
	}
	return b.hook(ctx, op, id)
}

// after counts a finished call; every method defers it.
func (b *stampBackend) after(err *error) {
	if errors.Is(*err, store.ErrUnavailable) {
		b.unavailableResults.Add(1)
	}
	b.finished.Add(1)
}

func (b *stampBackend) stamp(it ckItem) ckItem {
	it.Srv = b.srv.Add(1)
	return it
}

func (b *stampBackend) Get(ctx context.Context, id string) (ckItem, error) {
	v, err := b.GetVersioned(ctx, id)
	return v.Item, err
}

func (b *stampBackend) GetVersioned(ctx context.Context, id string) (_ store.Versioned[ckItem], err error) {
	defer b.after(&err)
	if err := b.before(ctx, memory.OpGet, id); err != nil {
		return store.Versioned[ckItem]{}, err
	}
	return b.VersionedBackend.GetVersioned(ctx, id)
}

func (b *stampBackend) GetAll(ctx context.Context, q store.Query[ckItem]) ([]ckItem, error) {
	vs, err := b.GetAllVersioned(ctx, q)
	items := make([]ckItem, len(vs))
	for i, v := range vs {
		items[i] = v.Item
	}
	return items, err
}

func (b *stampBackend) GetAllVersioned(ctx context.Context, q store.Query[ckItem]) (_ []store.Versioned[ckItem], err error) {
	defer b.after(&err)
	if err := b.before(ctx, memory.OpGetAll, nil); err != nil {
		return nil, err
	}
	return b.VersionedBackend.GetAllVersioned(ctx, q)
}

func (b *stampBackend) Save(ctx context.Context, id string, it ckItem) (ckItem, error) {
	v, err := b.SaveVersioned(ctx, id, it, store.VersionAny)
	return v.Item, err
}

func (b *stampBackend) SaveVersioned(ctx context.Context, id string, it ckItem, expect uint64) (_ store.Versioned[ckItem], err error) {
	defer b.after(&err)
	if err := b.before(ctx, memory.OpSave, id); err != nil {
		return store.Versioned[ckItem]{}, err
	}
	return b.VersionedBackend.SaveVersioned(ctx, id, b.stamp(it), expect)
}

func (b *stampBackend) Delete(ctx context.Context, id string) (bool, error) {
	return b.DeleteVersioned(ctx, id, store.VersionAny)
}

func (b *stampBackend) DeleteVersioned(ctx context.Context, id string, expect uint64) (_ bool, err error) {
	defer b.after(&err)
	if err := b.before(ctx, memory.OpDelete, id); err != nil {
		return false, err
	}
	return b.VersionedBackend.DeleteVersioned(ctx, id, expect)
}

// txStampBackend is stampBackend over a backend with transactions (SQLite).
type txStampBackend struct {
	*stampBackend
	txb store.TxBackend[ckItem, string]
}

func (b *txStampBackend) Begin(ctx context.Context) (store.BackendTx[ckItem, string], error) {
	if err := b.before(ctx, memory.OpSave, nil); err != nil {
		return nil, err
	}
	tx, err := b.txb.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &stampTx{BackendTx: tx, b: b.stampBackend}, nil
}

type stampTx struct {
	store.BackendTx[ckItem, string]
	b *stampBackend
}

func (tx *stampTx) Save(ctx context.Context, id string, it ckItem) (store.Versioned[ckItem], error) {
	return tx.BackendTx.Save(ctx, id, tx.b.stamp(it))
}

// syncCounter is a MetricsReporter that counts sync events with atomics, so
// that turning telemetry on adds no lock that would serialize the workload.
// It asks for item IDs and keeps the first resolved conflict's, to name it.
type syncCounter struct {
	conflicts, retried, failed atomic.Int64
	errors                     atomic.Int64
	firstConflict              atomic.Pointer[conflictSeen]
}

// conflictSeen is a resolved conflict: its ID and when.
type conflictSeen struct {
	id any
	at time.Time
}

var (
	_ store.MetricsReporter = (*syncCounter)(nil)
	_ store.Binder          = (*syncCounter)(nil)
)

func (c *syncCounter) Bind(store.StoreInfo) store.Binding { return store.Binding{WantItemIDs: true} }

func (c *syncCounter) ReportOperation(context.Context, store.OperationMetric) {}
func (c *syncCounter) ReportCacheEvent(context.Context, store.CacheMetric)    {}
func (c *syncCounter) ReportError(context.Context, store.ErrorMetric)         { c.errors.Add(1) }
func (c *syncCounter) Flush(context.Context) error                            { return nil }

func (c *syncCounter) ReportSyncEvent(_ context.Context, m store.SyncMetric) {
	switch m.Event {
	case store.SyncConflictResolved:
		c.conflicts.Add(1)
		c.firstConflict.CompareAndSwap(nil, &conflictSeen{id: m.ItemID, at: time.Now()})
	case store.SyncRetried:
		c.retried.Add(1)
	case store.SyncFailed:
		c.failed.Add(1)
	}
}

// openChecked creates a store for one history and returns it with its
// Close, which runs once: when the caller calls it (to check its error), or
// else when the test ends.
func openChecked(t *testing.T, b store.Backend[ckItem, string], cfg store.Config[ckItem, string]) (*store.Store[ckItem, string], func() error) {
	t.Helper()
	s, err := store.New(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	closeOnce := sync.OnceValue(func() error { return s.Close(context.Background()) })
	t.Cleanup(func() { closeOnce() })
	return s, closeOnce
}

// pick returns one of xs at random.
func pick[E any](xs ...E) E { return xs[rand.N(len(xs))] }

// chance reports true with probability p.
func chance(p float64) bool { return rand.Float64() < p }

// describeTok renders a token for messages: "t12", or "absent" for 0.
func describeTok(tok int64) string { return lincheck.DescribeTok(tok) }

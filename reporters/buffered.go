package reporters

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nexusstore/nexus/store"
)

// DefaultMaxPendingBatches is how many full buffers a Buffered reporter
// queues for its delegate before it drops metrics.
const DefaultMaxPendingBatches = 4

// ErrDropped is matched (errors.Is) by the *DroppedError a Buffered reporter
// passes to its error handler.
var ErrDropped = errors.New("reporters: metrics dropped")

// DroppedError tells the error handler of a Buffered reporter that metrics
// were dropped since the previous DroppedError because the delegate fell
// behind (or because they were reported after Close).
type DroppedError struct {
	Count uint64
}

// Error says how many metrics were dropped.
func (e *DroppedError) Error() string {
	return "reporters: " + strconv.FormatUint(e.Count, 10) + " metrics dropped by the buffered reporter"
}

// Is makes a DroppedError match ErrDropped.
func (e *DroppedError) Is(target error) bool { return target == ErrDropped }

// BufferedOption configures a Buffered reporter.
type BufferedOption func(*bufferedConfig)

type bufferedConfig struct {
	size       int
	interval   time.Duration
	maxPending int
	onError    func(error)
}

// WithBufferSize sets how many metrics a buffer holds before it is handed
// to the delegate; n <= 0 means store.DefaultMetricsBufferSize (100).
func WithBufferSize(n int) BufferedOption {
	return func(c *bufferedConfig) {
		c.size = n
		if n <= 0 {
			c.size = store.DefaultMetricsBufferSize
		}
	}
}

// WithFlushInterval sets how often a partly filled buffer is handed to the
// delegate; d <= 0 means store.DefaultFlushInterval (30s).
func WithFlushInterval(d time.Duration) BufferedOption {
	return func(c *bufferedConfig) {
		c.interval = d
		if d <= 0 {
			c.interval = store.DefaultFlushInterval
		}
	}
}

// FromConfig takes the buffer size and the flush interval from a store's
// MetricsConfig (BufferSize, FlushInterval), a zero field meaning the
// default, so that one Config drives both the store and its buffer.
func FromConfig(cfg store.MetricsConfig) BufferedOption {
	return func(c *bufferedConfig) {
		WithBufferSize(cfg.BufferSize)(c)
		WithFlushInterval(cfg.FlushInterval)(c)
	}
}

// WithMaxPendingBatches sets how many full buffers may wait for the
// delegate before new metrics are dropped; n <= 0 means
// DefaultMaxPendingBatches (4).
func WithMaxPendingBatches(n int) BufferedOption {
	return func(c *bufferedConfig) {
		c.maxPending = n
		if n <= 0 {
			c.maxPending = DefaultMaxPendingBatches
		}
	}
}

// WithErrorHandler sets the function that receives the Buffered reporter's
// background failures: a *DroppedError after metrics were dropped, and a
// *store.ReporterPanicError when the delegate panicked. It is called from
// the flushing goroutine, must not block, and its panics are recovered.
// Without it failures are only counted (Dropped, Panics).
func WithErrorHandler(fn func(error)) BufferedOption {
	return func(c *bufferedConfig) { c.onError = fn }
}

// Buffered decouples a slow reporter from the store: report calls append
// the metric to a buffer and return, and a single goroutine delivers the
// buffers to the delegate. See NewBuffered.
type Buffered struct {
	c         *bufCore
	forwarder // to the delegate's tracer and stats: spans cannot be buffered
}

var (
	_ store.MetricsReporter = (*Buffered)(nil)
	_ store.Binder          = (*Buffered)(nil)
	_ store.OperationTracer = (*Buffered)(nil)
	_ store.StatsProvider   = (*Buffered)(nil)
	_ store.FeedReporter    = (*Buffered)(nil)
)

// NewBuffered returns a Buffered reporter delivering to delegate. The
// defaults are a buffer of store.DefaultMetricsBufferSize (100) metrics,
// flushed every store.DefaultFlushInterval (30s), with up to
// DefaultMaxPendingBatches (4) full buffers queued.
//
// Report calls never block on the delegate: when the buffer is full it is
// swapped for an empty one and queued for the flushing goroutine at once, so
// a burst larger than the buffer is delivered whole. Only when more than
// the maximum of full buffers are waiting (the delegate fell behind) are
// new metrics dropped; Dropped counts them and the next flush passes the
// count to the error handler as a *DroppedError. Memory is bounded by the
// maximum of pending buffers, plus the one being filled and the one being
// delivered, whatever the delegate does. In steady state a report call
// allocates nothing: buffers are typed slices of the metric structs,
// recycled.
//
// Buffers are handed to the delegate when full, when the flush interval
// elapses, on Flush (which waits for everything reported before it to be
// delivered, then flushes the delegate) and on Close. The flushing
// goroutine starts with the first metric and stops at Close: close every
// Buffered reporter you create.
//
// After each buffer the delegate's Flush is called (errors go to the error
// handler): a delegate that batches, such as one that sends one HTTP request
// per buffer, sends there.
//
// The delegate receives the metrics in the order they were reported, from
// the flushing goroutine, with context.Background(): a buffered metric holds
// no request's context (its memory, its cancellation), so the span and
// exemplar links that a delegate derives from the context are lost through
// buffering. Operation spans cannot be buffered: the store's
// OperationTracer calls go straight to the delegate, synchronously.
// A delegate that panics is contained: the panic is recovered, counted
// (Panics) and passed to the error handler, and the buffer keeps working.
//
// Bind binds the delegate, if it is a store.Binder, and returns a
// per-store reporter that shares this reporter's buffer and goroutine and
// delivers to the bound delegate; it has the delegate's tracing and stats
// capabilities, and no others. Stats and ResetStats are forwarded to the
// delegate, if it provides stats: they lag by what is still buffered, so
// Flush first for exact figures.
func NewBuffered(delegate store.MetricsReporter, opts ...BufferedOption) *Buffered {
	if delegate == nil {
		delegate = store.NoOpMetricsReporter{}
	}
	cfg := bufferedConfig{
		size:       store.DefaultMetricsBufferSize,
		interval:   store.DefaultFlushInterval,
		maxPending: DefaultMaxPendingBatches,
	}
	for _, o := range opts {
		o(&cfg)
	}
	b := &Buffered{c: &bufCore{
		delegate: delegate,
		cfg:      cfg,
		queue:    make(chan *batch, cfg.maxPending),
		free:     make(chan *batch, cfg.maxPending+2),
		wake:     make(chan struct{}, 1),
		stopped:  make(chan struct{}),
	}}
	b.forwarder = forwarderOf(delegate)
	return b
}

// ReportOperation buffers m.
func (b *Buffered) ReportOperation(_ context.Context, m store.OperationMetric) {
	b.c.reportOperation(b.c.delegate, m)
}

// ReportCacheEvent buffers m.
func (b *Buffered) ReportCacheEvent(_ context.Context, m store.CacheMetric) {
	b.c.reportCache(b.c.delegate, m)
}

// ReportSyncEvent buffers m.
func (b *Buffered) ReportSyncEvent(_ context.Context, m store.SyncMetric) {
	b.c.reportSync(b.c.delegate, m)
}

// ReportError buffers m.
func (b *Buffered) ReportError(_ context.Context, m store.ErrorMetric) {
	b.c.reportError(b.c.delegate, m)
}

// ReportFeedEvent buffers m for the delegate, if it records change-feed
// events.
func (b *Buffered) ReportFeedEvent(_ context.Context, m store.FeedMetric) {
	b.c.reportFeed(b.c.delegate, m)
}

// Flush waits until everything reported before the call was delivered (or
// ctx ends), then flushes the delegate and returns its error.
func (b *Buffered) Flush(ctx context.Context) error {
	return b.c.flush(ctx, b.c.delegate)
}

// Close delivers everything buffered, stops the flushing goroutine and
// flushes the delegate (it does not close it: the delegate may serve
// others). Metrics reported after Close are dropped and counted. Close is
// idempotent; if ctx ends first it returns the context's error and the
// goroutine goes on draining, and a later Close waits again.
func (b *Buffered) Close(ctx context.Context) error {
	c := b.c
	c.mu.Lock()
	if c.closeDone {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	running := c.running
	c.wantCur()
	c.mu.Unlock()
	if running {
		select {
		case <-c.stopped:
		case <-ctx.Done():
			return fmt.Errorf("reporters: closing the buffered reporter: %w", ctx.Err())
		}
	}
	c.mu.Lock()
	first := !c.closeDone
	c.closeDone = true
	c.mu.Unlock()
	if !first {
		return nil
	}
	return c.flushDelegate(ctx, c.delegate)
}

// Dropped returns how many metrics were dropped because the delegate fell
// behind or because they were reported after Close.
func (b *Buffered) Dropped() uint64 { return b.c.dropped.Load() }

// Panics returns how many calls to the delegate panicked.
func (b *Buffered) Panics() uint64 { return b.c.panics.Load() }

// Bind binds the delegate, if it is a store.Binder, and returns a reporter
// for the store that buffers into b and delivers to the bound delegate. Its
// Release is the bound delegate's: the store calls it after its final
// Flush, so if that Flush gave up (its context ended), metrics of the store
// still buffered reach the delegate after the Release.
func (b *Buffered) Bind(info store.StoreInfo) store.Binding {
	to := b.c.delegate
	var bd store.Binding
	if d, ok := to.(store.Binder); ok {
		bd = d.Bind(info)
		if bd.Err != nil {
			return bd // refused: the store is not created
		}
		if bd.Reporter != nil {
			to = bd.Reporter
		}
	}
	tr, _ := to.(store.OperationTracer)
	return store.Binding{
		Reporter:    withCapabilities(&bufferedStore{c: b.c, to: to}, tr, statsOf(to, b.c.delegate)),
		WantItemIDs: bd.WantItemIDs,
		Release:     bd.Release,
	}
}

// bufferedStore is the reporter Buffered.Bind returns: it shares the
// buffer and delivers to the bound delegate.
type bufferedStore struct {
	c  *bufCore
	to store.MetricsReporter
}

// ReportOperation buffers m for the bound delegate.
func (s *bufferedStore) ReportOperation(_ context.Context, m store.OperationMetric) {
	s.c.reportOperation(s.to, m)
}

// ReportCacheEvent buffers m for the bound delegate.
func (s *bufferedStore) ReportCacheEvent(_ context.Context, m store.CacheMetric) {
	s.c.reportCache(s.to, m)
}

// ReportSyncEvent buffers m for the bound delegate.
func (s *bufferedStore) ReportSyncEvent(_ context.Context, m store.SyncMetric) {
	s.c.reportSync(s.to, m)
}

// ReportError buffers m for the bound delegate.
func (s *bufferedStore) ReportError(_ context.Context, m store.ErrorMetric) {
	s.c.reportError(s.to, m)
}

// ReportFeedEvent buffers m for the bound delegate, if it records
// change-feed events.
func (s *bufferedStore) ReportFeedEvent(_ context.Context, m store.FeedMetric) {
	s.c.reportFeed(s.to, m)
}

// Flush waits for everything reported before it to be delivered, then
// flushes the bound delegate.
func (s *bufferedStore) Flush(ctx context.Context) error { return s.c.flush(ctx, s.to) }

// batch is one buffer of metrics, of every kind, in typed slices; order
// says which slice holds each metric, in the order they were reported, and
// whom to deliver it to.
type batch struct {
	seq   uint64 // its rank in handover order, set when handed over
	order []entry
	ops   []store.OperationMetric
	cache []store.CacheMetric
	syncs []store.SyncMetric
	errs  []store.ErrorMetric
	feeds []store.FeedMetric
}

type entry struct {
	kind Kind
	to   store.MetricsReporter
}

// reset empties b for reuse, dropping its references (errors, IDs, tags,
// reporters) so that a recycled buffer holds no memory of its metrics.
func (b *batch) reset() {
	clear(b.order)
	clear(b.ops)
	clear(b.cache)
	clear(b.syncs)
	clear(b.errs)
	clear(b.feeds)
	b.order, b.ops, b.cache, b.syncs, b.errs, b.feeds = b.order[:0], b.ops[:0], b.cache[:0], b.syncs[:0], b.errs[:0], b.feeds[:0]
}

// bufCore is the buffer and the flushing goroutine of a Buffered reporter
// and of the reporters its Bind returns.
//
// Report calls fill cur under mu. A full batch is handed over through the
// queue channel, so that the goroutine takes batches without the mutex the
// report calls contend for; it takes mu only to take a batch that is not
// handed over (the interval elapsed, Flush, Close, or the queue was full).
// Batches are numbered (seq) in handover order, under mu, and delivered in
// that order.
type bufCore struct {
	delegate store.MetricsReporter
	cfg      bufferedConfig

	mu        sync.Mutex
	cur       *batch // being filled; nil until the next report
	sealed    uint64 // seq of the last batch handed over
	flushTo   uint64 // a Flush waits for the batches up to this seq
	partial   bool   // the interval elapsed: take cur even if not full
	closed    bool   // Close was called: reports are dropped
	closeDone bool   // Close finished draining and flushed the delegate
	running   bool   // the flushing goroutine was started

	// takeCur tells the goroutine to look at cur: set under mu when the
	// interval elapses, a Flush or Close wants cur, or cur is full and the
	// queue was too; read without it.
	takeCur atomic.Bool

	queue   chan *batch   // handed-over batches; capacity maxPending
	free    chan *batch   // recycled batches; capacity maxPending+2
	wake    chan struct{} // capacity 1: takeCur was set
	stopped chan struct{} // closed when the goroutine returns

	doneMu  sync.Mutex
	done    uint64 // seq of the last batch delivered
	waiters []*waiter

	dropped    atomic.Uint64
	unreported atomic.Uint64 // drops not yet passed to the error handler
	panics     atomic.Uint64
}

// waiter is a Flush waiting for the batches up to seq.
type waiter struct {
	seq uint64
	ch  chan struct{}
}

func (c *bufCore) reportOperation(to store.MetricsReporter, m store.OperationMetric) {
	c.mu.Lock()
	if b := c.reserve(to, KindOperation); b != nil {
		b.ops = append(b.ops, m)
		c.added(b)
	}
	c.mu.Unlock()
}

func (c *bufCore) reportCache(to store.MetricsReporter, m store.CacheMetric) {
	c.mu.Lock()
	if b := c.reserve(to, KindCache); b != nil {
		b.cache = append(b.cache, m)
		c.added(b)
	}
	c.mu.Unlock()
}

func (c *bufCore) reportSync(to store.MetricsReporter, m store.SyncMetric) {
	c.mu.Lock()
	if b := c.reserve(to, KindSync); b != nil {
		b.syncs = append(b.syncs, m)
		c.added(b)
	}
	c.mu.Unlock()
}

func (c *bufCore) reportError(to store.MetricsReporter, m store.ErrorMetric) {
	c.mu.Lock()
	if b := c.reserve(to, KindError); b != nil {
		b.errs = append(b.errs, m)
		c.added(b)
	}
	c.mu.Unlock()
}

func (c *bufCore) reportFeed(to store.MetricsReporter, m store.FeedMetric) {
	if _, ok := to.(store.FeedReporter); !ok {
		return // nothing to deliver it to: neither buffered nor dropped
	}
	c.mu.Lock()
	if b := c.reserve(to, KindFeed); b != nil {
		b.feeds = append(b.feeds, m)
		c.added(b)
	}
	c.mu.Unlock()
}

// reserve makes room for a metric of kind k in the current batch and
// returns the batch, to which the caller appends the metric, then calls
// added; nil means that the metric is dropped. Called with mu held.
func (c *bufCore) reserve(to store.MetricsReporter, k Kind) *batch {
	if c.closed {
		c.drop()
		return nil
	}
	b := c.cur
	if b != nil && len(b.order) >= c.cfg.size {
		// Full, and the queue was full when it filled up.
		if !c.handOver() {
			c.drop()
			return nil
		}
		b = nil
	}
	if b == nil {
		b = c.newBatch()
		c.cur = b
		if !c.running {
			c.running = true
			go c.run()
		}
	}
	b.order = append(b.order, entry{k, to})
	return b
}

// added hands b over if the metric just appended filled it. Called with mu
// held, after the append: once handed over, b belongs to the goroutine.
func (c *bufCore) added(b *batch) {
	if len(b.order) >= c.cfg.size {
		c.handOver()
	}
}

func (c *bufCore) drop() {
	c.dropped.Add(1)
	c.unreported.Add(1)
}

// handOver queues the current batch for the goroutine, if the queue has
// room; if not, it asks the goroutine to take it once the queue drains.
// Called with mu held.
func (c *bufCore) handOver() bool {
	c.cur.seq = c.sealed + 1
	select {
	case c.queue <- c.cur:
		c.sealed++
		c.cur = nil
		return true
	default:
		c.wantCur()
		return false
	}
}

// wantCur asks the goroutine to look at cur. Called with mu held.
func (c *bufCore) wantCur() {
	c.takeCur.Store(true)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// newBatch returns a recycled batch, or a new one.
func (c *bufCore) newBatch() *batch {
	select {
	case b := <-c.free:
		return b
	default:
		return &batch{order: make([]entry, 0, c.cfg.size)}
	}
}

// run is the flushing goroutine.
func (c *bufCore) run() {
	defer close(c.stopped)
	tick := time.NewTicker(c.cfg.interval)
	defer tick.Stop()
	for {
		select {
		case b := <-c.queue:
			c.deliver(b)
		case <-c.wake:
		case <-tick.C:
			c.mu.Lock()
			c.partial = true
			c.wantCur()
			c.mu.Unlock()
		}
		if c.drain() {
			return
		}
	}
}

// drain delivers the queued batches, then the current one if the goroutine
// was asked to take it. It reports true when Close was called and
// everything was delivered.
func (c *bufCore) drain() (stop bool) {
	for {
		select {
		case b := <-c.queue:
			c.deliver(b)
			continue
		default:
		}
		if !c.takeCur.Load() {
			c.reportDrops()
			return false
		}
		b, queued, stop := c.takeCurrent()
		switch {
		case b != nil:
			c.deliver(b)
		case !queued:
			c.reportDrops()
			return stop
		}
	}
}

// takeCurrent takes cur for delivery if it should go now. queued reports
// that the queue is not empty (its batches go first); stop reports that
// Close was called and nothing is left.
func (c *bufCore) takeCurrent() (b *batch, queued, stop bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) > 0 {
		return nil, true, false
	}
	cur := c.cur
	if cur != nil && len(cur.order) > 0 &&
		(c.partial || c.closed || c.flushTo > c.sealed || len(cur.order) >= c.cfg.size) {
		c.sealed++
		cur.seq = c.sealed
		c.cur = nil
		c.partial = false
		return cur, false, false
	}
	c.partial = false
	c.takeCur.Store(c.closed)
	return nil, false, c.closed
}

// deliver passes b's metrics to their reporters, then records b as
// delivered, wakes the Flush calls waiting for it and recycles it.
func (c *bufCore) deliver(b *batch) {
	c.deliverMetrics(b)
	c.flushTargets(b)
	c.reportDrops()
	seq := b.seq
	b.reset()
	select {
	case c.free <- b:
	default:
	}
	c.doneMu.Lock()
	defer c.doneMu.Unlock()
	c.done = seq
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.seq <= c.done {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	clear(c.waiters[len(kept):])
	c.waiters = kept
}

// deliverMetrics passes b's metrics to their reporters, in order,
// containing panics.
func (c *bufCore) deliverMetrics(b *batch) {
	ctx := context.Background()
	var no, nc, ns, ne, nf int
	for _, e := range b.order {
		var p any
		var method string
		switch e.kind {
		case KindOperation:
			p, method = reportOperation(e.to, ctx, b.ops[no]), "ReportOperation"
			no++
		case KindCache:
			p, method = reportCache(e.to, ctx, b.cache[nc]), "ReportCacheEvent"
			nc++
		case KindSync:
			p, method = reportSync(e.to, ctx, b.syncs[ns]), "ReportSyncEvent"
			ns++
		case KindError:
			p, method = reportError(e.to, ctx, b.errs[ne]), "ReportError"
			ne++
		case KindFeed:
			p, method = reportFeed(e.to, ctx, b.feeds[nf]), "ReportFeedEvent"
			nf++
		}
		if p != nil {
			c.panics.Add(1)
			c.handleError(&store.ReporterPanicError{Method: method, Value: p})
		}
	}
}

// flushTargets flushes every reporter b was delivered to, once, so that a
// delegate that batches (one HTTP request per buffer, say) sends what it
// was given. Its errors go to the error handler.
func (c *bufCore) flushTargets(b *batch) {
	ctx := context.Background()
	var flushed [4]store.MetricsReporter
	n := 0
	for _, e := range b.order {
		if n > 0 && sameReporter(flushed[:n], e.to) {
			continue
		}
		if n < len(flushed) {
			flushed[n] = e.to
			n++
		}
		if err := c.flushDelegate(ctx, e.to); err != nil {
			c.handleError(err)
		}
	}
}

// sameReporter reports whether r is in rs, without panicking on a
// reporter of a type that == cannot compare (such a reporter is flushed
// again).
func sameReporter(rs []store.MetricsReporter, r store.MetricsReporter) bool {
	if !reflect.TypeOf(r).Comparable() {
		return false
	}
	for _, x := range rs {
		if reflect.TypeOf(x) == reflect.TypeOf(r) && x == r {
			return true
		}
	}
	return false
}

// reportDrops passes the drops not yet reported to the error handler.
func (c *bufCore) reportDrops() {
	if n := c.unreported.Swap(0); n > 0 {
		c.handleError(&DroppedError{Count: n})
	}
}

func (c *bufCore) handleError(err error) {
	if c.cfg.onError == nil {
		return
	}
	defer func() { _ = recover() }()
	c.cfg.onError(err)
}

// flush waits until everything reported before it was delivered (or ctx
// ends), then flushes to.
func (c *bufCore) flush(ctx context.Context, to store.MetricsReporter) error {
	c.mu.Lock()
	target := c.sealed
	if c.cur != nil && len(c.cur.order) > 0 {
		target++ // cur is the next batch to be handed over
		c.flushTo = max(c.flushTo, target)
		c.wantCur()
	}
	c.mu.Unlock()
	c.doneMu.Lock()
	var w *waiter
	if target > c.done {
		w = &waiter{seq: target, ch: make(chan struct{})}
		c.waiters = append(c.waiters, w)
	}
	c.doneMu.Unlock()
	if w != nil {
		select {
		case <-w.ch:
		case <-ctx.Done():
			c.doneMu.Lock()
			c.waiters = slices.DeleteFunc(c.waiters, func(x *waiter) bool { return x == w })
			c.doneMu.Unlock()
			return fmt.Errorf("reporters: flushing the buffered reporter: %w", ctx.Err())
		}
	}
	return c.flushDelegate(ctx, to)
}

// flushDelegate flushes to, turning a panic into an error.
func (c *bufCore) flushDelegate(ctx context.Context, to store.MetricsReporter) (err error) {
	defer func() {
		if p := recover(); p != nil {
			c.panics.Add(1)
			err = &store.ReporterPanicError{Method: "Flush", Value: p}
		}
	}()
	return to.Flush(ctx)
}

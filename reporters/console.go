package reporters

import (
	"context"
	"io"
	"sync"
	"sync/atomic"

	"github.com/nexusstore/nexus/store"
)

// DefaultConsolePrefix starts every line of a Console unless WithPrefix
// says otherwise.
const DefaultConsolePrefix = "[NexusStore]"

// ConsoleOption configures a Console. WithPrefix is one; so are the
// FilterOptions WithKinds and WithMinDuration.
type ConsoleOption interface {
	applyConsole(*consoleConfig)
}

type consoleConfig struct {
	filter
	prefix string
}

type consoleOptionFunc func(*consoleConfig)

func (f consoleOptionFunc) applyConsole(c *consoleConfig) { f(c) }

// WithPrefix starts every line with p and a space instead of
// DefaultConsolePrefix; an empty p starts lines with the metric itself.
func WithPrefix(p string) ConsoleOption {
	return consoleOptionFunc(func(c *consoleConfig) { c.prefix = p })
}

// Console writes one human-readable line per metric to an io.Writer, for
// development and demos:
//
//	[NexusStore] get(user-123) completed in 15ms (cache hit)
//	[NexusStore] save_all(3 items) failed in 2.1ms: store: backend unavailable
//	[NexusStore] cache eviction user-7
//	[NexusStore] sync completed in 40ms (12 items)
//
// See the package documentation for the line of every metric. A Console is
// safe for concurrent use: each line is written with a single Write call
// under a mutex, so lines never interleave. A failing writer never affects
// the store: write errors, short writes and panics of the writer are
// counted (WriteErrors) and otherwise ignored.
//
// A Console asks the stores it is bound to for item IDs. While it serves
// more than one store, each line names its store after the prefix
// ("[NexusStore] user: get(u1) completed in 15ms").
type Console struct {
	c    *consoleCore
	name string // the bound store's name; "" for the Console NewConsole returns
}

// consoleCore is what a Console shares with the per-store Consoles that
// Bind returns.
type consoleCore struct {
	w      io.Writer
	cfg    consoleConfig
	mu     sync.Mutex // serializes writes
	failed atomic.Uint64
	stores atomic.Int32 // stores bound and not yet released
}

var (
	_ store.MetricsReporter = (*Console)(nil)
	_ store.Binder          = (*Console)(nil)
	_ store.FeedReporter    = (*Console)(nil)
)

// NewConsole returns a Console writing to w. Wrap w with bufio.Writer for
// throughput; Flush then flushes it.
func NewConsole(w io.Writer, opts ...ConsoleOption) *Console {
	cfg := consoleConfig{filter: defaultFilter(), prefix: DefaultConsolePrefix}
	for _, o := range opts {
		o.applyConsole(&cfg)
	}
	return &Console{c: &consoleCore{w: w, cfg: cfg}}
}

// Bind serves one store: the returned reporter writes to the same writer,
// under the same mutex, and names the store in its lines while several
// stores are bound. It asks for item IDs.
func (c *Console) Bind(info store.StoreInfo) store.Binding {
	c.c.stores.Add(1)
	var once sync.Once
	return store.Binding{
		Reporter:    &Console{c: c.c, name: info.Name},
		WantItemIDs: true,
		Release:     func() { once.Do(func() { c.c.stores.Add(-1) }) },
	}
}

// WriteErrors returns how many lines could not be written (the writer
// returned an error, wrote less than the line, or panicked).
func (c *Console) WriteErrors() uint64 { return c.c.failed.Load() }

// Flush flushes the writer if it has a Flush() error method (as
// bufio.Writer does); otherwise it returns nil. A panic of the writer's
// Flush is counted as a write error.
func (c *Console) Flush(context.Context) (err error) {
	f, ok := c.c.w.(interface{ Flush() error })
	if !ok {
		return nil
	}
	c.c.mu.Lock()
	defer c.c.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			c.c.failed.Add(1)
		}
	}()
	return f.Flush()
}

// ReportOperation writes a line such as
// "get(user-123) completed in 15ms (cache hit)".
func (c *Console) ReportOperation(_ context.Context, m store.OperationMetric) {
	if !c.c.cfg.operation(m.Duration) {
		return
	}
	l := c.begin()
	l.op(m.Operation, m.ItemID)
	if !singleItem(m.Operation) {
		l.str("(")
		l.items(m.ItemCount)
		l.str(")")
	}
	if m.Success {
		l.str(" completed in ")
	} else {
		l.str(" failed in ")
	}
	l.b = appendDuration(l.b, m.Duration)
	switch m.CacheResult {
	case store.CacheResultHit:
		l.note("cache hit")
	case store.CacheResultMiss:
		l.note("cache miss")
	}
	if m.Success && m.ItemCount == 0 && notFoundable(m.Operation) {
		l.note("not found")
	}
	l.sampleRate(m.SampleRate)
	l.endNotes()
	if !m.Success {
		l.err(m.Err)
	}
	c.c.write(l)
}

// ReportCacheEvent writes a line such as "cache eviction user-7".
func (c *Console) ReportCacheEvent(_ context.Context, m store.CacheMetric) {
	if !c.c.cfg.kinds.has(KindCache) {
		return
	}
	l := c.begin()
	l.str("cache ")
	l.str(m.Event.String())
	if m.ItemID != nil {
		l.str(" ")
		l.b = appendID(l.b, m.ItemID)
	}
	if len(m.Tags) > 0 {
		l.str(" [")
		for i, t := range m.Tags {
			if i > 0 {
				l.str(" ")
			}
			l.b = appendText(l.b, t)
		}
		l.str("]")
	}
	if m.Remote {
		l.note("remote")
	}
	l.sampleRate(m.SampleRate)
	l.endNotes()
	c.c.write(l)
}

// ReportSyncEvent writes a line such as "sync completed in 40ms (12 items)".
func (c *Console) ReportSyncEvent(_ context.Context, m store.SyncMetric) {
	if !c.c.cfg.kinds.has(KindSync) {
		return
	}
	l := c.begin()
	switch m.Event {
	case store.SyncCompleted, store.SyncFailed:
		l.str("sync ")
		l.str(m.Event.String())
		l.str(" in ")
		l.b = appendDuration(l.b, m.Duration)
		l.str(" (")
		l.items(m.ItemsSynced)
		l.str(")")
		if m.Event == store.SyncFailed {
			l.err(m.Err)
		}
	case store.SyncRetried:
		l.str("sync retried")
		l.id(m.ItemID)
		l.str(": attempt failed in ")
		l.b = appendDuration(l.b, m.Duration)
		l.err(m.Err)
	case store.SyncConflictResolved:
		l.str("sync conflict resolved")
		l.id(m.ItemID)
	default:
		l.str("sync ")
		l.str(m.Event.String())
		l.id(m.ItemID)
		l.err(m.Err)
	}
	c.c.write(l)
}

// ReportFeedEvent writes a line such as "feed changed user-7 (lag 3.1ms,
// 1 invalidated)", "feed reset (12 invalidated)" or "feed error: ...".
func (c *Console) ReportFeedEvent(_ context.Context, m store.FeedMetric) {
	if !c.c.cfg.kinds.has(KindFeed) {
		return
	}
	l := c.begin()
	l.str("feed ")
	l.str(m.Event.String())
	l.id(m.ItemID)
	if m.Event == store.FeedChanged && !m.Committed.IsZero() {
		l.note("lag ")
		l.b = appendDuration(l.b, m.Lag)
	}
	if m.Invalidated > 0 {
		l.note("")
		l.b = appendInt(l.b, m.Invalidated)
		l.str(" invalidated")
	}
	l.endNotes()
	l.err(m.Err)
	c.c.write(l)
}

// ReportError writes a line such as
// "error in save(user-7): store: backend unavailable", or
// "recovered error in get(user-7): ..." for an error the store handled.
// The stack, if captured, is not written.
func (c *Console) ReportError(_ context.Context, m store.ErrorMetric) {
	if !c.c.cfg.kinds.has(KindError) {
		return
	}
	l := c.begin()
	if m.Recoverable {
		l.str("recovered ")
	}
	l.str("error in ")
	l.op(m.Operation, m.ItemID)
	l.err(m.Err)
	c.c.write(l)
}

// line is a line being built, in a buffer from linePool.
type line struct {
	buf   *[]byte
	b     []byte
	notes bool // a "(" of notes is open
}

// linePool recycles line buffers, so that writing a line allocates nothing
// beyond what error messages and unusual IDs cost.
var linePool = sync.Pool{New: func() any {
	b := make([]byte, 0, 128)
	return &b
}}

// maxPooledLine bounds the buffers kept in linePool: a huge error message
// must not pin its buffer forever.
const maxPooledLine = 4 << 10

func (c *Console) begin() line {
	bp := linePool.Get().(*[]byte)
	l := line{buf: bp, b: (*bp)[:0]}
	if p := c.c.cfg.prefix; p != "" {
		l.str(p)
		l.str(" ")
	}
	if c.name != "" && c.c.stores.Load() > 1 {
		l.str(c.name)
		l.str(": ")
	}
	return l
}

func (l *line) str(s string) { l.b = append(l.b, s...) }

// op appends an operation, with its item ID for a single-item operation.
func (l *line) op(op store.OperationType, id any) {
	l.str(op.String())
	if id != nil && singleItem(op) {
		l.str("(")
		l.b = appendID(l.b, id)
		l.str(")")
	}
}

// id appends " " and id, if id is not nil.
func (l *line) id(id any) {
	if id != nil {
		l.str(" ")
		l.b = appendID(l.b, id)
	}
}

// items appends "1 item" or "N items".
func (l *line) items(n int) {
	l.b = appendInt(l.b, n)
	if n == 1 {
		l.str(" item")
	} else {
		l.str(" items")
	}
}

// note opens the parenthesized notes or continues them.
func (l *line) note(s string) {
	if l.notes {
		l.str(", ")
	} else {
		l.str(" (")
		l.notes = true
	}
	l.str(s)
}

func (l *line) sampleRate(rate float64) {
	if sampled(rate) {
		l.note("sampled ")
		l.b = appendSampleRate(l.b, rate)
	}
}

func (l *line) endNotes() {
	if l.notes {
		l.str(")")
		l.notes = false
	}
}

// err appends ": " and err's message, if err is not nil.
func (l *line) err(err error) {
	if err != nil {
		l.str(": ")
		l.b = appendText(l.b, err.Error())
	}
}

// write writes l as one line and recycles its buffer.
func (c *consoleCore) write(l line) {
	l.b = append(l.b, '\n')
	c.writeLine(l.b)
	if cap(l.b) <= maxPooledLine {
		*l.buf = l.b[:0]
		linePool.Put(l.buf)
	}
}

func (c *consoleCore) writeLine(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			c.failed.Add(1)
		}
	}()
	if n, err := c.w.Write(b); err != nil || n != len(b) {
		c.failed.Add(1)
	}
}

// singleItem reports whether op works on one item, named by its ID.
func singleItem(op store.OperationType) bool {
	switch op {
	case store.OpGet, store.OpSave, store.OpDelete, store.OpWatch:
		return true
	}
	return false
}

// notFoundable reports whether a successful op with no item means that the
// item was absent.
func notFoundable(op store.OperationType) bool {
	return op == store.OpGet || op == store.OpWatch || op == store.OpDelete
}

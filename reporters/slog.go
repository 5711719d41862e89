package reporters

import (
	"context"
	"log/slog"
	"time"

	"github.com/nexusstore/nexus/store"
)

// Category classifies the records of a Slog reporter, for WithLevel.
type Category uint8

// The categories, with their default levels.
const (
	CategoryOperation       Category = iota // a successful operation: Debug
	CategoryOperationFailed                 // a failed operation: Warn
	CategoryCache                           // a cache event: Debug
	CategorySync                            // sync started and completed: Debug
	CategorySyncRetried                     // a push that will be retried: Info
	CategorySyncConflict                    // a conflict resolved by Sync: Info
	CategorySyncFailed                      // a failed Sync run: Warn
	CategoryError                           // an error the caller saw: Error
	CategoryRecoveredError                  // an error the store handled: Warn
	CategoryFeed                            // a change-feed change or reset: Debug
	CategoryFeedError                       // the change feed lost its source: Warn

	numCategories
)

var defaultLevels = [numCategories]slog.Level{
	CategoryOperation:       slog.LevelDebug,
	CategoryOperationFailed: slog.LevelWarn,
	CategoryCache:           slog.LevelDebug,
	CategorySync:            slog.LevelDebug,
	CategorySyncRetried:     slog.LevelInfo,
	CategorySyncConflict:    slog.LevelInfo,
	CategorySyncFailed:      slog.LevelWarn,
	CategoryError:           slog.LevelError,
	CategoryRecoveredError:  slog.LevelWarn,
	CategoryFeed:            slog.LevelDebug,
	CategoryFeedError:       slog.LevelWarn,
}

// The messages of the records of a Slog reporter; the details are in the
// attributes.
const (
	SlogOperationMessage = "nexus operation"
	SlogCacheMessage     = "nexus cache event"
	SlogSyncMessage      = "nexus sync event"
	SlogErrorMessage     = "nexus error"
	SlogFeedMessage      = "nexus feed event"
)

// SlogOption configures a Slog reporter. WithLevel is one; so are the
// FilterOptions WithKinds and WithMinDuration.
type SlogOption interface {
	applySlog(*slogConfig)
}

type slogConfig struct {
	filter
	levels [numCategories]slog.Level
}

type slogOptionFunc func(*slogConfig)

func (f slogOptionFunc) applySlog(c *slogConfig) { f(c) }

// WithLevel logs the records of category c at level l instead of the
// default (see Category).
func WithLevel(c Category, l slog.Level) SlogOption {
	return slogOptionFunc(func(cfg *slogConfig) {
		if c < numCategories {
			cfg.levels[c] = l
		}
	})
}

// Slog turns metrics into structured log/slog records, the Go-native way to
// send them to whatever handler an application already uses. Every metric
// kind has its own message (SlogOperationMessage, ...) and these
// attributes, when they apply:
//
//	store        the store's name (bound reporters only, added with Logger.With)
//	operation    "get", "save_all", ...
//	policy       the fetch or write policy
//	duration     a time.Duration
//	success      bool
//	items        the item count of an operation, the items synced by a run
//	cache        "hit" or "miss" (operations), the event (cache events)
//	event        the sync event, or the change-feed event
//	remote       true for a cache invalidation another writer caused
//	lag          a change-feed change's lag, a time.Duration
//	invalidated  the cache entries a change-feed event dropped
//	id           the item ID
//	tags         the cache entry's tags
//	error        the error
//	error_type   store.ErrorType of the error
//	recoverable  bool, for errors
//	sample_rate  the sample rate, when below 1
//	stack        the captured stack, if any
//
// Levels are per Category. Before building a record it asks the logger
// whether the level is enabled, so disabled records cost a call to the
// handler's Enabled and nothing else. The record's time is the metric's
// timestamp; the context the store passes reaches the handler (for trace
// correlation). Errors returned by the handler are ignored, as slog.Logger
// does. A Slog is safe for concurrent use and asks for item IDs at Bind.
type Slog struct {
	logger *slog.Logger
	cfg    *slogConfig
}

var (
	_ store.MetricsReporter = (*Slog)(nil)
	_ store.Binder          = (*Slog)(nil)
	_ store.FeedReporter    = (*Slog)(nil)
)

// NewSlog returns a Slog logging to logger (nil: slog.Default()).
func NewSlog(logger *slog.Logger, opts ...SlogOption) *Slog {
	if logger == nil {
		logger = slog.Default()
	}
	cfg := &slogConfig{filter: defaultFilter(), levels: defaultLevels}
	for _, o := range opts {
		o.applySlog(cfg)
	}
	return &Slog{logger: logger, cfg: cfg}
}

// Bind serves one store: the returned reporter's records carry a "store"
// attribute, added once with Logger.With. It asks for item IDs.
func (s *Slog) Bind(info store.StoreInfo) store.Binding {
	return store.Binding{
		Reporter:    &Slog{logger: s.logger.With(slog.String("store", info.Name)), cfg: s.cfg},
		WantItemIDs: true,
	}
}

// Flush does nothing and returns nil: records are handed to the handler as
// they come.
func (s *Slog) Flush(context.Context) error { return nil }

// maxAttrs is the most attributes a record gets; they are gathered on the
// stack and added at once, so that a record allocates at most once beyond
// what slog.Record holds inline.
const maxAttrs = 12

// ReportOperation logs an operation at CategoryOperation's level, or
// CategoryOperationFailed's.
func (s *Slog) ReportOperation(ctx context.Context, m store.OperationMetric) {
	if !s.cfg.operation(m.Duration) {
		return
	}
	c := CategoryOperation
	if !m.Success {
		c = CategoryOperationFailed
	}
	r, ok := s.record(ctx, c, m.Timestamp, SlogOperationMessage)
	if !ok {
		return
	}
	a := make([]slog.Attr, 0, maxAttrs)
	a = append(a, slog.String("operation", m.Operation.String()))
	if m.Policy != store.PolicyNone {
		a = append(a, slog.String("policy", m.Policy.String()))
	}
	a = append(a,
		slog.Duration("duration", m.Duration),
		slog.Bool("success", m.Success),
		slog.Int("items", m.ItemCount),
	)
	if m.CacheResult != store.CacheResultNone {
		a = append(a, slog.String("cache", m.CacheResult.String()))
	}
	a = withID(a, m.ItemID)
	a = withErr(a, m.Err)
	a = withRate(a, m.SampleRate)
	s.handle(ctx, r, a)
}

// ReportCacheEvent logs a cache event at CategoryCache's level.
func (s *Slog) ReportCacheEvent(ctx context.Context, m store.CacheMetric) {
	if !s.cfg.kinds.has(KindCache) {
		return
	}
	r, ok := s.record(ctx, CategoryCache, m.Timestamp, SlogCacheMessage)
	if !ok {
		return
	}
	a := make([]slog.Attr, 0, maxAttrs)
	a = append(a, slog.String("cache", m.Event.String()))
	if m.Remote {
		a = append(a, slog.Bool("remote", true))
	}
	a = withID(a, m.ItemID)
	if len(m.Tags) > 0 {
		a = append(a, slog.Any("tags", m.Tags))
	}
	a = withRate(a, m.SampleRate)
	s.handle(ctx, r, a)
}

// ReportSyncEvent logs a sync event at the level of CategorySync,
// CategorySyncRetried, CategorySyncConflict or CategorySyncFailed.
func (s *Slog) ReportSyncEvent(ctx context.Context, m store.SyncMetric) {
	if !s.cfg.kinds.has(KindSync) {
		return
	}
	c := CategorySync
	switch m.Event {
	case store.SyncFailed:
		c = CategorySyncFailed
	case store.SyncRetried:
		c = CategorySyncRetried
	case store.SyncConflictResolved:
		c = CategorySyncConflict
	}
	r, ok := s.record(ctx, c, m.Timestamp, SlogSyncMessage)
	if !ok {
		return
	}
	a := make([]slog.Attr, 0, maxAttrs)
	a = append(a, slog.String("event", m.Event.String()))
	switch m.Event {
	case store.SyncCompleted, store.SyncFailed:
		a = append(a, slog.Duration("duration", m.Duration), slog.Int("items", m.ItemsSynced))
	case store.SyncRetried:
		a = append(a, slog.Duration("duration", m.Duration))
	}
	a = withID(a, m.ItemID)
	a = withErr(a, m.Err)
	s.handle(ctx, r, a)
}

// ReportError logs an error at CategoryError's level, or
// CategoryRecoveredError's when the store handled it.
func (s *Slog) ReportError(ctx context.Context, m store.ErrorMetric) {
	if !s.cfg.kinds.has(KindError) {
		return
	}
	c := CategoryError
	if m.Recoverable {
		c = CategoryRecoveredError
	}
	r, ok := s.record(ctx, c, m.Timestamp, SlogErrorMessage)
	if !ok {
		return
	}
	a := make([]slog.Attr, 0, maxAttrs)
	a = append(a, slog.String("operation", m.Operation.String()), slog.Bool("recoverable", m.Recoverable))
	a = withID(a, m.ItemID)
	a = withErr(a, m.Err)
	if len(m.Stack) > 0 {
		a = append(a, slog.String("stack", string(m.Stack)))
	}
	s.handle(ctx, r, a)
}

// ReportFeedEvent logs a change-feed event at CategoryFeed's level, or
// CategoryFeedError's for an error.
func (s *Slog) ReportFeedEvent(ctx context.Context, m store.FeedMetric) {
	if !s.cfg.kinds.has(KindFeed) {
		return
	}
	c := CategoryFeed
	if m.Event == store.FeedError {
		c = CategoryFeedError
	}
	r, ok := s.record(ctx, c, m.Timestamp, SlogFeedMessage)
	if !ok {
		return
	}
	a := make([]slog.Attr, 0, maxAttrs)
	a = append(a, slog.String("event", m.Event.String()))
	if m.Event == store.FeedChanged && !m.Committed.IsZero() {
		a = append(a, slog.Duration("lag", m.Lag))
	}
	a = append(a, slog.Int("invalidated", m.Invalidated))
	a = withID(a, m.ItemID)
	a = withErr(a, m.Err)
	s.handle(ctx, r, a)
}

// record starts a record of category c, unless the logger does not want
// its level: then it builds nothing.
func (s *Slog) record(ctx context.Context, c Category, t time.Time, msg string) (slog.Record, bool) {
	level := s.cfg.levels[c]
	if !s.logger.Enabled(ctx, level) {
		return slog.Record{}, false
	}
	if t.IsZero() {
		t = time.Now()
	}
	return slog.NewRecord(t, level, msg, 0), true
}

func (s *Slog) handle(ctx context.Context, r slog.Record, attrs []slog.Attr) {
	r.AddAttrs(attrs...)
	_ = s.logger.Handler().Handle(ctx, r)
}

func withID(a []slog.Attr, id any) []slog.Attr {
	if id != nil {
		a = append(a, slog.Any("id", id))
	}
	return a
}

func withErr(a []slog.Attr, err error) []slog.Attr {
	if err != nil {
		a = append(a, slog.Any("error", err), slog.String("error_type", store.ErrorType(err)))
	}
	return a
}

func withRate(a []slog.Attr, rate float64) []slog.Attr {
	if sampled(rate) {
		a = append(a, slog.Float64("sample_rate", rate))
	}
	return a
}

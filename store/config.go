package store

import (
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by New to zero-valued fields.
const (
	DefaultRetryAttempts      = 3
	DefaultRetryInitialDelay  = 100 * time.Millisecond
	DefaultRetryMaxDelay      = 5 * time.Second
	DefaultRetryMultiplier    = 2.0
	DefaultRetryJitter        = 0.1
	DefaultRefreshWorkers     = 4
	DefaultTransactionTimeout = 30 * time.Second
	DefaultMetricsBufferSize  = 100
	DefaultFlushInterval      = 30 * time.Second
)

// NoJitter, as RetryConfig.Jitter, turns jitter off (the zero value means
// the default, 10%).
const NoJitter = -1.0

// Config configures a Store. Only IDOf is required.
type Config[T any, ID comparable] struct {
	// IDOf returns an item's ID. Required.
	IDOf func(T) ID
	// Name names the store in metrics (the nexus.store.name attribute); the
	// default is derived from T ("user" for a User or *User).
	Name string
	// FetchPolicy is the default for reads; the zero value is FetchCacheFirst.
	FetchPolicy FetchPolicy
	// WritePolicy is the default for writes; the zero value is
	// WriteCacheAndNetwork.
	WritePolicy WritePolicy
	// CacheTTL is how long a cached entry stays fresh; 0: entries never go
	// stale.
	CacheTTL time.Duration
	// NotFoundTTL, if positive, makes the store remember for that long that
	// an ID does not exist (negative caching): a read of it within the TTL
	// is a cache hit returning ErrNotFound, without a backend call. A write
	// of the ID replaces the negative entry at once. 0 (the default): a
	// not-found is never cached.
	NotFoundTTL time.Duration
	// MaxCacheSize bounds the number of cached entries; 0: unbounded.
	// Beyond it an entry not read recently is evicted, as the CLOCK
	// algorithm approximates least-recently-used (entries with pending or
	// in-flight writes are never evicted).
	MaxCacheSize int
	// RefreshWorkers bounds the background refreshes running at once
	// (FetchCacheAndNetwork, FetchStaleWhileRevalidate); 0: 4.
	RefreshWorkers int

	// Retry configures the retries of Sync pushes.
	Retry RetryConfig
	// SyncInterval, if positive, runs Sync in the background at that
	// interval until Close.
	SyncInterval time.Duration
	// Conflict chooses how Sync resolves a conflict reported by a
	// VersionedBackend; the zero value is ConflictServerWins.
	Conflict ConflictStrategy
	// ResolveConflict is the resolver for ConflictCustom.
	ResolveConflict func(Conflict[T, ID]) Resolution[T]
	// TransactionTimeout bounds a Transaction (callback and commit);
	// 0: 30s.
	TransactionTimeout time.Duration

	// MetricsReporter receives the telemetry; nil: NoOpMetricsReporter{}.
	MetricsReporter MetricsReporter
	// Metrics configures sampling (and, read by reporters.FromConfig,
	// buffering).
	Metrics MetricsConfig
	// ErrorHandler receives failures that have no caller to return to:
	// background refreshes, background syncs, reporter panics. nil: they are
	// counted in telemetry and dropped. It must not block.
	ErrorHandler func(error)
}

// RetryConfig configures how Sync retries a failed push.
type RetryConfig struct {
	// MaxAttempts is the total number of attempts per pending change in one
	// Sync run; 0: 3. 1 turns retries off.
	MaxAttempts int
	// InitialDelay is the wait before the first retry; 0: 100ms.
	InitialDelay time.Duration
	// MaxDelay caps the wait between attempts; 0: 5s.
	MaxDelay time.Duration
	// Multiplier grows the wait after each attempt; 0: 2. At least 1.
	Multiplier float64
	// Jitter randomizes each wait by up to ± this fraction, in [0, 1];
	// 0: 0.1; NoJitter turns it off.
	Jitter float64
	// Retryable decides whether a failed push is retried; nil: every error
	// except context errors and conflicts (which are resolved, not retried).
	// A context error is never retried, whatever Retryable says.
	Retryable func(error) bool
}

// MetricsConfig configures telemetry.
type MetricsConfig struct {
	// SampleRate is the fraction of operations reported, in (0, 1]; the zero
	// value means 1. To report nothing use the no-op reporter.
	SampleRate float64
	// BufferSize is read by reporters.FromConfig (reporters.NewBuffered);
	// the store itself never buffers. 0: 100.
	BufferSize int
	// FlushInterval is read by reporters.FromConfig; 0: 30s.
	FlushInterval time.Duration
	// CaptureStacks fills ErrorMetric.Stack (costs a stack dump per error).
	CaptureStacks bool
}

// WithDefaults returns c with zero fields set to their defaults.
func (c MetricsConfig) WithDefaults() MetricsConfig {
	if c.SampleRate == 0 {
		c.SampleRate = 1
	}
	if c.BufferSize == 0 {
		c.BufferSize = DefaultMetricsBufferSize
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	return c
}

// Validate reports the first bad field of c as a *ConfigError.
func (c MetricsConfig) Validate() error {
	switch {
	case math.IsNaN(c.SampleRate) || c.SampleRate < 0 || c.SampleRate > 1:
		return &ConfigError{"Metrics.SampleRate", "must be in [0, 1] (0 means 1), got " + formatFloat(c.SampleRate)}
	case c.BufferSize < 0:
		return &ConfigError{"Metrics.BufferSize", "must not be negative"}
	case c.FlushInterval < 0:
		return &ConfigError{"Metrics.FlushInterval", "must not be negative"}
	}
	return nil
}

func (c RetryConfig) withDefaults() RetryConfig {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultRetryAttempts
	}
	if c.InitialDelay == 0 {
		c.InitialDelay = DefaultRetryInitialDelay
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = max(DefaultRetryMaxDelay, c.InitialDelay)
	}
	if c.Multiplier == 0 {
		c.Multiplier = DefaultRetryMultiplier
	}
	switch c.Jitter {
	case 0:
		c.Jitter = DefaultRetryJitter
	case NoJitter:
		c.Jitter = 0
	}
	return c
}

func (c RetryConfig) validate() error {
	switch {
	case c.MaxAttempts < 0:
		return &ConfigError{"Retry.MaxAttempts", "must not be negative"}
	case c.InitialDelay < 0:
		return &ConfigError{"Retry.InitialDelay", "must not be negative"}
	case c.MaxDelay < 0:
		return &ConfigError{"Retry.MaxDelay", "must not be negative"}
	case c.MaxDelay > 0 && c.InitialDelay > c.MaxDelay:
		return &ConfigError{"Retry.MaxDelay", "must not be less than Retry.InitialDelay"}
	case math.IsNaN(c.Multiplier) || math.IsInf(c.Multiplier, 0) || (c.Multiplier != 0 && c.Multiplier < 1):
		return &ConfigError{"Retry.Multiplier", "must be at least 1 (0 means 2), got " + formatFloat(c.Multiplier)}
	case c.Jitter != NoJitter && (math.IsNaN(c.Jitter) || c.Jitter < 0 || c.Jitter > 1):
		return &ConfigError{"Retry.Jitter", "must be in [0, 1] or NoJitter, got " + formatFloat(c.Jitter)}
	}
	return nil
}

func (c *Config[T, ID]) validate() error {
	switch {
	case c.IDOf == nil:
		return &ConfigError{"IDOf", "is required"}
	case !c.FetchPolicy.valid():
		return &ConfigError{"FetchPolicy", "unknown policy " + c.FetchPolicy.String()}
	case !c.WritePolicy.valid():
		return &ConfigError{"WritePolicy", "unknown policy " + c.WritePolicy.String()}
	case c.CacheTTL < 0:
		return &ConfigError{"CacheTTL", "must not be negative"}
	case c.NotFoundTTL < 0:
		return &ConfigError{"NotFoundTTL", "must not be negative"}
	case c.MaxCacheSize < 0:
		return &ConfigError{"MaxCacheSize", "must not be negative"}
	case c.RefreshWorkers < 0:
		return &ConfigError{"RefreshWorkers", "must not be negative"}
	case c.SyncInterval < 0:
		return &ConfigError{"SyncInterval", "must not be negative"}
	case !c.Conflict.valid():
		return &ConfigError{"Conflict", "unknown strategy " + c.Conflict.String()}
	case c.Conflict == ConflictCustom && c.ResolveConflict == nil:
		return &ConfigError{"ResolveConflict", "is required with ConflictCustom"}
	case c.TransactionTimeout < 0:
		return &ConfigError{"TransactionTimeout", "must not be negative"}
	case strings.TrimSpace(c.Name) != c.Name:
		return &ConfigError{"Name", "must not start or end with spaces"}
	}
	if err := c.Retry.validate(); err != nil {
		return err
	}
	return c.Metrics.Validate()
}

// defaultName derives a store name from T: the type's name in snake_case
// without its package ("user_profile" for *app.UserProfile); "store" for
// unnamed types.
func defaultName[T any]() string {
	t := reflect.TypeFor[T]()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	name := t.Name()
	if i := strings.IndexByte(name, '['); i >= 0 { // generic instantiation
		name = name[:i]
	}
	if name == "" {
		return "store"
	}
	var b strings.Builder
	for i, r := range name {
		if 'A' <= r && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

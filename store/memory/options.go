package memory

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"time"
)

// Option configures a Backend at construction; pass it to New.
type Option interface{ apply(*config) }

type config struct {
	latency     time.Duration
	failureRate float64
	fault       func(ctx context.Context, op Op, id any) error
	clone       any // func(T) T, checked against the backend's T in New
	feedQueue   int
	feed        bool
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithLatency makes every call wait d before it runs, as a remote backend
// would. The wait ends early, failing the call, when the call's context
// ends. The wait uses a timer, so testing/synctest can drive it. A negative
// d makes New panic. SetLatency changes it at run time.
func WithLatency(d time.Duration) Option {
	return optionFunc(func(c *config) { c.latency = d })
}

// WithFailureRate makes each call fail with probability p, with an error
// matching store.ErrUnavailable. A p outside [0, 1] (or NaN) makes New
// panic.
func WithFailureRate(p float64) Option {
	return optionFunc(func(c *config) { c.failureRate = p })
}

// WithFault installs fn, called before each operation with the call's
// context, the operation and the item's ID (nil for GetAll). A non-nil error
// fails the call and is returned as it is. fn may block, for instance to
// hold a call until a test releases it; concurrent calls run it
// concurrently. With several WithFault options the last one wins.
func WithFault(fn func(ctx context.Context, op Op, id any) error) Option {
	return optionFunc(func(c *config) { c.fault = fn })
}

// WithClone makes the backend copy items with clone as they go in (Save)
// and come out (every read, and the values Save returns), so that callers
// and the backend never share memory through slices, maps or pointers
// inside T. Without it items are copied as Go copies values. clone runs
// without the backend's lock held and must be safe for concurrent use. The
// type parameter must be the backend's item type, or New panics; a nil
// clone turns cloning off.
func WithClone[T any](clone func(T) T) Option {
	return optionFunc(func(c *config) {
		if clone == nil {
			c.clone = nil
			return
		}
		c.clone = clone
	})
}

// WithChangeFeed turns the backend's change feed on (see Subscribe): every
// store over the backend then hears of the changes the others make, as
// stores over a networked backend with a feed do. Use it when several
// stores share one backend. Without it Subscribe answers
// store.ErrNoChangeFeed, and a store over the backend runs without a feed
// (no goroutine, no event per write).
func WithChangeFeed() Option {
	return optionFunc(func(c *config) { c.feed = true })
}

// WithFeedQueue bounds the events a change feed subscription may have
// waiting for its callback (default DefaultFeedQueue); beyond it they
// collapse into one store.FeedReset (see Subscribe). An n below 1 makes New
// panic.
func WithFeedQueue(n int) Option {
	return optionFunc(func(c *config) { c.feedQueue = n })
}

// newConfig applies opts and panics on invalid values: they are programmer
// errors, like a bad pattern given to regexp.MustCompile, and New has no
// error to return.
func newConfig[T any](opts []Option) (config, func(T) T) {
	c := config{feedQueue: DefaultFeedQueue}
	for _, o := range opts {
		o.apply(&c)
	}
	if c.latency < 0 {
		panic(fmt.Sprintf("memory: WithLatency: negative latency %v", c.latency))
	}
	if math.IsNaN(c.failureRate) || c.failureRate < 0 || c.failureRate > 1 {
		panic(fmt.Sprintf("memory: WithFailureRate: rate %v outside [0, 1]", c.failureRate))
	}
	if c.feedQueue < 1 {
		panic(fmt.Sprintf("memory: WithFeedQueue: bound %d below 1", c.feedQueue))
	}
	if c.clone == nil {
		return c, nil
	}
	clone, ok := c.clone.(func(T) T)
	if !ok {
		panic(fmt.Sprintf("memory: WithClone: clone is %T, want func(%v) %[2]v", c.clone, reflect.TypeFor[T]()))
	}
	return c, clone
}

package postgres

import (
	"fmt"
	"regexp"
	"time"

	"github.com/nexusstore/nexus/store"
)

// DefaultTable is the table a Backend uses when WithTable is not given.
const DefaultTable = "items"

// MaxTableName is the longest table name WithTable accepts: the names
// derived from it (its sequence, trigger functions and notification
// channel) must fit PostgreSQL's 63-byte identifiers.
const MaxTableName = 48

// Default reconnection delays of the change feed's listener (see
// WithFeedBackoff).
const (
	DefaultFeedBackoffMin = 100 * time.Millisecond
	DefaultFeedBackoffMax = 5 * time.Second
)

// Option configures New.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// config is what the options set; New validates it.
type config struct {
	table                  string
	backoffMin, backoffMax time.Duration
}

func newConfig(opts []Option) config {
	c := config{table: DefaultTable, backoffMin: DefaultFeedBackoffMin, backoffMax: DefaultFeedBackoffMax}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	return c
}

// WithTable names the table that holds the items (default DefaultTable). The
// name must be a plain SQL identifier: an ASCII letter or underscore, then
// letters, digits or underscores, at most MaxTableName characters. It is
// always quoted, so it is case-sensitive ("Users" and "users" are two
// tables), and it is looked up through the connection's search_path. New
// reports any other name as an error naming this option. Several Backends,
// for different item types, can share one database through different
// tables.
func WithTable(name string) Option {
	return optionFunc(func(c *config) { c.table = name })
}

// WithFeedBackoff sets how long the change feed's listener waits before
// trying to connect again after a failure: min the first time, doubling up
// to max, each delay varied by up to ±20% so that many replicas do not
// reconnect in step. The defaults are DefaultFeedBackoffMin and
// DefaultFeedBackoffMax. New refuses min <= 0 or max < min.
func WithFeedBackoff(min, max time.Duration) Option {
	return optionFunc(func(c *config) { c.backoffMin, c.backoffMax = min, max })
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// check reports the first invalid option value, naming the option.
func (c config) check() error {
	switch {
	case c.table == "":
		return fmt.Errorf("option WithTable: %w: table name is empty", store.ErrInvalidArgument)
	case len(c.table) > MaxTableName:
		return fmt.Errorf("option WithTable: %w: table name %q is longer than %d characters", store.ErrInvalidArgument, c.table, MaxTableName)
	case !identifier.MatchString(c.table):
		return fmt.Errorf("option WithTable: %w: table name %q is not a plain identifier (letters, digits and underscores, not starting with a digit)", store.ErrInvalidArgument, c.table)
	case c.backoffMin <= 0 || c.backoffMax < c.backoffMin:
		return fmt.Errorf("option WithFeedBackoff: %w: min %v and max %v: want 0 < min <= max", store.ErrInvalidArgument, c.backoffMin, c.backoffMax)
	}
	return nil
}

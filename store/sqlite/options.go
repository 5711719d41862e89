package sqlite

import (
	"fmt"
	"regexp"
	"strings"
)

// DefaultTable is the table a Backend uses when WithTable is not given.
const DefaultTable = "items"

// Option configures Open.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// config is what the options set; Open validates it.
type config struct {
	table string
}

// WithTable names the table that holds the items (default DefaultTable). The
// name must be a plain SQL identifier: an ASCII letter or underscore, then
// letters, digits or underscores, at most 64 characters, not starting with
// the "sqlite_" prefix that SQLite reserves. Open reports any other name as
// an error naming this option. Several Backends, for different item types,
// can share one file through different tables.
func WithTable(name string) Option {
	return optionFunc(func(c *config) { c.table = name })
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// maxTableName keeps the derived index name and error messages readable; it
// is not a SQLite limit.
const maxTableName = 64

// checkTable reports why name is not a safe table name, or nil. Open only
// accepts names that need no quoting, so it never interpolates anything a
// caller could use to inject SQL (the name is quoted as well, for keywords
// such as "order").
func checkTable(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("table name is empty")
	case len(name) > maxTableName:
		return fmt.Errorf("table name %q is longer than %d characters", name, maxTableName)
	case !identifier.MatchString(name):
		return fmt.Errorf("table name %q is not a plain identifier (letters, digits and underscores, not starting with a digit)", name)
	case strings.HasPrefix(strings.ToLower(name), "sqlite_"):
		return fmt.Errorf("table name %q uses the prefix sqlite_, which SQLite reserves", name)
	}
	return nil
}

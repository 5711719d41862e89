package sqlite_test

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/sqlite"
	"github.com/nexusstore/nexus/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend[storetest.Item, string] {
		return open[storetest.Item, string](t, filepath.Join(t.TempDir(), "conformance.db"))
	})
}

// TestConformanceSharedFile runs the suite with every backend in its own
// table of one file, as applications that keep several item types do.
func TestConformanceSharedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	n := 0
	storetest.Run(t, func(t *testing.T) store.Backend[storetest.Item, string] {
		n++
		return open[storetest.Item, string](t, path, sqlite.WithTable("t"+strconv.Itoa(n)))
	})
}

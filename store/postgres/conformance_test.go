package postgres_test

import (
	"testing"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/postgres"
	"github.com/nexusstore/nexus/store/storetest"
)

// TestConformance runs the suite against the real server, each backend in a
// table of its own in one database.
func TestConformance(t *testing.T) {
	pool := sharedPool(t)
	storetest.Run(t, func(t *testing.T) store.Backend[storetest.Item, string] {
		return open[storetest.Item, string](t, pool, postgres.WithTable(newTable()))
	})
}

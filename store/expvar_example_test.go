package store_test

import (
	"expvar"
	"fmt"

	"github.com/nexusstore/nexus/store"
)

// StatsFunc publishes a store's stats under /debug/vars (expvar's handler
// on http.DefaultServeMux), with operation and event names as keys.
func ExampleStatsFunc() {
	stats := func() store.StoreStats { // users.Stats, for a store named users
		return store.StoreStats{OperationCounts: map[store.OperationType]int64{store.OpGet: 3}}
	}
	expvar.Publish("nexus.example_users", store.StatsFunc(stats))
	fmt.Println(expvar.Get("nexus.example_users").String()[:29])
	// Output: {"OperationCounts":{"get":3},
}

package store

import "encoding/json"

// StatsFunc publishes a store's figures where live process figures are
// expected: it is an expvar.Var (a String method that returns JSON), so
//
//	expvar.Publish("nexus.users", store.StatsFunc(users.Stats))
//
// makes /debug/vars show the store's current StoreStats, with names as keys
// ("get", "hit", ...). Each read of the variable calls the function: with
// nexusotel, one Stats collection. Package store does not import expvar
// itself (its init registers an HTTP handler); StatsFunc needs no import
// to satisfy expvar.Var.
type StatsFunc func() StoreStats

// String returns the StoreStats as JSON, or a JSON object with an "error"
// member if it cannot be encoded.
func (f StatsFunc) String() string {
	b, err := json.Marshal(f())
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	return string(b)
}

package store

import "strconv"

// FetchPolicy decides where a read is served from: the local cache, the
// backend, or both. The zero value is FetchCacheFirst.
type FetchPolicy uint8

const (
	// FetchCacheFirst returns a fresh cached value; otherwise it reads the
	// backend and fills the cache.
	FetchCacheFirst FetchPolicy = iota
	// FetchNetworkFirst reads the backend; if that fails it falls back to a
	// cached value, even a stale one.
	FetchNetworkFirst
	// FetchCacheAndNetwork returns a cached value of any age at once and
	// refreshes it from the backend in the background.
	FetchCacheAndNetwork
	// FetchCacheOnly never touches the backend.
	FetchCacheOnly
	// FetchNetworkOnly always reads the backend and never falls back.
	FetchNetworkOnly
	// FetchStaleWhileRevalidate returns a fresh value; a stale one is returned
	// and refreshed in the background; an absent one is read through.
	FetchStaleWhileRevalidate

	numFetchPolicies
)

var fetchPolicyNames = [numFetchPolicies]string{
	"cache_first", "network_first", "cache_and_network",
	"cache_only", "network_only", "stale_while_revalidate",
}

// String returns the snake_case name used in metric attributes, e.g.
// "cache_first".
func (p FetchPolicy) String() string {
	return enumName(fetchPolicyNames[:], p, "FetchPolicy")
}

// Policy returns p as the policy reported in metrics.
func (p FetchPolicy) Policy() Policy { return Policy(1 + p) }

func (p FetchPolicy) valid() bool { return p < numFetchPolicies }

// WritePolicy decides the order in which a write reaches the cache and the
// backend. The zero value is WriteCacheAndNetwork.
type WritePolicy uint8

const (
	// WriteCacheAndNetwork writes the cache first (watchers see the change at
	// once), then the backend; if the backend fails, the cache is rolled back.
	WriteCacheAndNetwork WritePolicy = iota
	// WriteNetworkFirst writes the backend first and the cache only after the
	// backend succeeded.
	WriteNetworkFirst
	// WriteCacheFirst writes the cache now and queues the change for Sync
	// (write-behind, offline-first).
	WriteCacheFirst
	// WriteCacheOnly writes the cache only; the backend never sees the change.
	// Such an entry never goes stale (there is nothing to refresh it from),
	// but eviction and invalidation drop it.
	WriteCacheOnly

	numWritePolicies
)

var writePolicyNames = [numWritePolicies]string{
	"cache_and_network", "network_first", "cache_first", "cache_only",
}

// String returns the snake_case name used in metric attributes.
func (p WritePolicy) String() string {
	return enumName(writePolicyNames[:], p, "WritePolicy")
}

// Policy returns p as the policy reported in metrics.
func (p WritePolicy) Policy() Policy { return Policy(1 + uint8(numFetchPolicies) + uint8(p)) }

func (p WritePolicy) valid() bool { return p < numWritePolicies }

// Policy is the policy in effect for an operation, as reported in
// OperationMetric: a fetch policy, a write policy, or PolicyNone. It is a
// small dense integer so that reporters can index precomputed tables by it;
// iterate over every value with
//
//	for p := store.PolicyNone; p.Valid(); p++ { ... }
type Policy uint8

// PolicyNone is the policy of operations that have none (Watch, Sync,
// Transaction).
const PolicyNone Policy = 0

const numPolicies = 1 + Policy(numFetchPolicies) + Policy(numWritePolicies)

// Valid reports whether p is PolicyNone or one of the fetch or write policies.
func (p Policy) Valid() bool { return p < numPolicies }

// Fetch returns the fetch policy p stands for, if it is one.
func (p Policy) Fetch() (FetchPolicy, bool) {
	if p >= 1 && p < 1+Policy(numFetchPolicies) {
		return FetchPolicy(p - 1), true
	}
	return 0, false
}

// Write returns the write policy p stands for, if it is one.
func (p Policy) Write() (WritePolicy, bool) {
	if p >= 1+Policy(numFetchPolicies) && p < numPolicies {
		return WritePolicy(p - 1 - Policy(numFetchPolicies)), true
	}
	return 0, false
}

// String returns the policy's snake_case name, or "" for PolicyNone.
func (p Policy) String() string {
	if f, ok := p.Fetch(); ok {
		return f.String()
	}
	if w, ok := p.Write(); ok {
		return w.String()
	}
	if p == PolicyNone {
		return ""
	}
	return "Policy(" + strconv.Itoa(int(p)) + ")"
}

// enumName is the String of the package's small enums: the name, or
// Type(n) for a value out of range.
func enumName[E ~uint8](names []string, e E, typ string) string {
	if int(e) < len(names) {
		return names[e]
	}
	return typ + "(" + strconv.Itoa(int(e)) + ")"
}

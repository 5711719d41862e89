// Package memory is the in-memory store.Backend: the embedded default
// behind a store, and the backend that tests and demos run against.
//
// A Backend keeps items in a map guarded by a sync.RWMutex, so it is safe
// for concurrent use; reads run in parallel. GetAll returns items in the
// order they were first saved.
//
// # Copies
//
// Items are stored by value: T is copied as Go copies values, so a T that
// is or holds a pointer, slice or map shares that memory with the caller.
// WithClone gives the backend a copy function, after which callers and the
// backend never share memory, as with a backend that serializes.
//
// # Versions
//
// Backend implements store.VersionedBackend: every save takes the next
// value of one counter for the whole backend (the first save gets version
// 1), and conditional writes fail with a *store.ConflictError. It does not
// implement store.TxBackend, on purpose: a store over it applies
// transactions with compensating writes, and this backend is how that path
// gets tested.
//
// # Change feed
//
// Backend implements store.ChangeFeed, so that several stores over one
// backend keep their caches coherent, as stores over a networked backend
// do. Every committed save and delete (conditional ones included) is queued,
// in commit order, for each subscription, whose own goroutine calls its
// callback outside the backend's lock: a write never waits for a
// subscriber. A subscription starts with a store.FeedReset. More than
// WithFeedQueue events (DefaultFeedQueue) waiting for a slow callback
// collapse into one store.FeedReset. SetFeedDown simulates a lost feed
// connection: changes are dropped while it holds, a store.FeedError
// announces it and a store.FeedReset its end.
//
// # Latency and faults
//
// Options and runtime controls make the backend behave like a remote one
// for demos and tests. Each call (Len and Calls excepted) goes through these
// steps, and the first that fails the call ends it:
//
//  1. it is counted (see Calls);
//  2. it fails with the context's error if its context is done;
//  3. it waits out the latency (WithLatency, SetLatency), failing with the
//     context's error if the context ends first;
//  4. it fails with an error matching store.ErrUnavailable while
//     SetUnavailable(true) holds;
//  5. it fails if FailNext armed failures remain (consuming one);
//  6. it fails with an error matching store.ErrUnavailable with the
//     probability WithFailureRate gave;
//  7. it fails with the error the WithFault hook returns, if non-nil.
//
// The waits use timers, never time.Sleep, so testing/synctest drives them
// with fake time. Injected errors name the operation, e.g.
// "store: backend unavailable: memory: injected failure in save".
//
// Options with invalid values (a negative latency, a failure rate outside
// [0, 1]) make New panic with a message naming the option: they are
// programmer errors, as a bad pattern given to regexp.MustCompile is.
package memory

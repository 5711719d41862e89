package store

import "time"

// BackendInfo describes a backend for telemetry, in the terms of
// OpenTelemetry's database semantic conventions. A backend offers it through
// the optional DescribedBackend capability; New passes it to the reporter in
// StoreInfo.Backend.
type BackendInfo struct {
	// System is the database system as db.system.name names it, e.g.
	// "sqlite" or "postgresql"; empty for a backend that is not a database
	// (the memory backend).
	System string
	// Collection is the table or collection the backend keeps items in
	// (db.collection.name).
	Collection string
	// Namespace is the database (db.namespace), e.g. a PostgreSQL database
	// name; empty when there is none worth naming.
	Namespace string
	// ServerAddress and ServerPort name the server of a networked backend
	// (server.address, server.port); empty and 0 for embedded ones.
	ServerAddress string
	ServerPort    int
	// InProcess is set for a backend that does its work in the
	// application's own memory (the memory backend): a tracer then records
	// its calls as INTERNAL spans rather than CLIENT spans.
	InProcess bool
}

// DescribedBackend is an optional capability: a backend that describes
// itself for telemetry. New reads it once.
type DescribedBackend interface {
	BackendInfo() BackendInfo
}

// FeedEventKind says what a FeedEvent reports.
type FeedEventKind uint8

const (
	// FeedChanged: an item was saved or deleted (by anyone).
	FeedChanged FeedEventKind = iota
	// FeedReset: the feed is (again) delivering every change, but changes
	// made before this point may have been lost (it connected, or
	// reconnected after an outage). A subscriber must stop trusting what it
	// learned before: the store drops its cached entries.
	FeedReset
	// FeedError: the feed lost its source and is trying to get it back; Err
	// says why. A FeedReset follows once it is back.
	FeedError
)

// FeedEvent is one event of a ChangeFeed.
type FeedEvent[ID comparable] struct {
	Kind FeedEventKind
	// ID, Deleted and Version describe a FeedChanged event: the item, whether
	// it was deleted, and its version after the change (0 when the backend
	// has no versions; for a delete, the version it had, or 0).
	ID      ID
	Deleted bool
	Version uint64
	// Committed is when the change was made, by the backend's clock; zero
	// when unknown. The store measures the feed's lag from it.
	Committed time.Time
	// Err is the failure of a FeedError event.
	Err error
}

// ChangeFeed is an optional capability: a backend that tells its subscribers
// about the changes committed to it by anyone (this store, other stores,
// other processes), so that their caches stay coherent with writers they do
// not see. New subscribes by itself when the backend has it, and Close
// unsubscribes.
type ChangeFeed[ID comparable] interface {
	// Subscribe starts delivering events to fn and returns at once; it does
	// not wait for the feed's source (the feed connects, and reconnects, in
	// the background, reporting FeedError while it cannot and FeedReset
	// each time it is ready, the first time included). fn is called from
	// one goroutine at a time, in commit order for each ID, and must not
	// block for long. stop ends the subscription and returns once fn will
	// not be called again; it is idempotent.
	Subscribe(fn func(FeedEvent[ID])) (stop func(), err error)
}

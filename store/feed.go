package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

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

// ConnPoolStats are the figures of a networked backend's connection pool,
// as OpenTelemetry's database client conventions name them.
type ConnPoolStats struct {
	// Max is the most connections the pool opens; Idle and Used are the
	// open connections waiting for work and lent out.
	Max, Idle, Used int
	// Timeouts counts the waits for a connection that gave up (their
	// context ended) since the pool was created.
	Timeouts int64
}

// PooledBackend is an optional capability: a backend with a connection pool
// reports its figures. Store.Live includes them (LiveStats.Pool), and
// nexusotel exports them as db.client.connection.* gauges.
type PooledBackend interface {
	ConnPoolStats() ConnPoolStats
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

var feedEventNames = [...]string{"changed", "reset", "error"}

// String returns "changed", "reset" or "error".
func (k FeedEventKind) String() string { return enumName(feedEventNames[:], k, "FeedEventKind") }

// FeedEvent is one event of a ChangeFeed.
type FeedEvent[ID comparable] struct {
	Kind FeedEventKind
	// ID, Deleted and Version describe a FeedChanged event: the item, whether
	// it was deleted, and its version after the change (0 when the backend
	// has no versions; for a delete, the version it had). A feed's versions
	// of one ID increase with every save, across deletes: the store ignores
	// a save no newer than what it caches (its own writes come back through
	// the feed) and a delete of a version older than what it caches (heard
	// after the save that followed it).
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
	// each time it is ready, the first time included; a feed that is ready
	// at once may deliver that first event before Subscribe returns). fn is
	// called from one goroutine at a time, in commit order for each ID, and
	// must not block for long. stop ends the subscription and returns once
	// fn will not be called again; it is idempotent. A backend that has no
	// feed to offer returns an error matching ErrNoChangeFeed.
	Subscribe(fn func(FeedEvent[ID])) (stop func(), err error)
}

// subscribeFeed subscribes the store to its backend's change feed. Until
// the feed's first FeedReset, and from a FeedError to the next reset, the
// store does not trust its cache: reads that would be answered from it ask
// the backend (entries read as stale), since another writer's change may
// go unheard.
func (s *Store[T, ID]) subscribeFeed(cf ChangeFeed[ID]) error {
	s.cache.feedDown.Store(true)
	s.cache.inflight = make(map[ID]heard)
	stop, err := cf.Subscribe(s.onFeed)
	if errors.Is(err, ErrNoChangeFeed) {
		s.cache.feedDown.Store(false)
		s.cache.inflight = nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: subscribing to the backend's change feed: %w", err)
	}
	s.stopFeed = stop
	return nil
}

// onFeed applies one change-feed event; it runs on the feed's goroutine.
func (s *Store[T, ID]) onFeed(ev FeedEvent[ID]) {
	ctx := context.Background()
	m := FeedMetric{Event: ev.Kind, Err: ev.Err}
	var dropped []idTags[ID]
	var refresh []refreshKey[ID]
	switch ev.Kind {
	case FeedReset:
		dropped, refresh = s.cache.feedReset()
	case FeedError:
		s.cache.feedLost()
		err := fmt.Errorf("store: change feed: %w", ev.Err)
		m.Err = err
		s.tel.handleError(err)
	case FeedChanged:
		e, refreshWatchers := s.cache.feedChanged(ev)
		if e != nil {
			dropped = append(dropped, *e)
		}
		if refreshWatchers {
			refresh = append(refresh, refreshKey[ID]{id: ev.ID})
		}
		m.ItemID = s.boxID(ev.ID)
		if !ev.Committed.IsZero() {
			m.Committed, m.Lag = ev.Committed, max(time.Since(ev.Committed), 0)
		}
	default:
		return
	}
	m.Invalidated = len(dropped)
	for _, key := range refresh {
		s.refresh.changed(nil, key)
	}
	if !s.tel.on {
		return
	}
	now := s.tel.now()
	for _, d := range dropped {
		s.tel.reportCache(ctx, CacheMetric{Event: CacheInvalidation, Remote: true, ItemID: s.boxID(d.id), Tags: d.tags, SampleRate: 1, Timestamp: now})
	}
	if s.tel.feed != nil {
		m.Timestamp = now
		s.tel.reportFeed(ctx, m)
	}
}

// feedChanged applies another writer's change of ev.ID: the cached entry
// is dropped (its watchers refresh, or see the delete), unless it is
// already as new (the store's own write coming back, or a delete of an
// older version heard late) or holds a local write (a write-through in
// flight then settles unverified; a pending change meets the conflict when
// it is pushed). A racing backend read cannot fill the old value after it.
// It returns the dropped entry, if any, and whether the ID's watchers need
// a refresh to learn of the change (a delete of a cached entry reaches
// them as it is removed).
func (c *cache[T, ID]) feedChanged(ev FeedEvent[ID]) (dropped *idTags[ID], refresh bool) {
	c.lock()
	defer c.unlock()
	id := ev.ID
	watched := c.watchers.watching(id)
	if h, ok := c.inflight[id]; ok {
		switch {
		case ev.Deleted:
			h.deleted = true
		case ev.Version == 0:
			h.lost = true
		default:
			h.version = max(h.version, ev.Version)
		}
		c.inflight[id] = h
	}
	e := c.m[id]
	switch {
	case e != nil && !e.local() && ev.Version != 0 && e.versionKnown &&
		(e.version > ev.Version || (e.version == ev.Version && !ev.Deleted)):
		// The cache is as new already: the store's own save coming back,
		// or a change older than the cached value heard late (the feed
		// lags; a delete carries the version it removed).
		return nil, false
	case e != nil && e.local():
		c.dropped(id)
		e.invalidated = e.invalidated || e.busy
		// The local write is what watchers see.
	case e == nil:
		// Nothing cached to compare the change with: a read in flight must
		// not fill the old value, and watchers learn the backend's value
		// from a refresh, not from the event: a delete heard late may be
		// older than what they saw.
		c.dropped(id)
		refresh = watched
	default:
		dropped = &idTags[ID]{id, e.tags}
		c.remove(e, ev.Deleted) // watchers see a delete as it happens
		refresh = watched && !ev.Deleted
	}
	if !ev.Deleted {
		c.complete = false // the cache lacks the new value: it is no whole listing
	}
	return dropped, refresh
}

// feedReset drops every entry but the local ones (an in-flight write is
// marked and settles unverified), trusts the cache again, and returns the
// dropped entries and the refreshes their watchers need.
func (c *cache[T, ID]) feedReset() (dropped []idTags[ID], refresh []refreshKey[ID]) {
	c.lock()
	defer c.unlock()
	c.droppedAll()
	c.complete = false
	c.lostInflight()
	for _, e := range c.m {
		switch {
		case e.busy:
			e.invalidated = true
		case e.pending == nil:
			dropped = append(dropped, idTags[ID]{e.id, e.tags})
			if c.watchers.watching(e.id) {
				refresh = append(refresh, refreshKey[ID]{id: e.id})
			}
			c.remove(e, false)
		}
	}
	// Watchers of IDs the cache holds nothing of missed the changes lost
	// too.
	for id := range c.watchers.byID {
		if _, ok := c.m[id]; !ok {
			refresh = append(refresh, refreshKey[ID]{id: id})
		}
	}
	if len(c.watchers.all) > 0 {
		refresh = append(refresh, refreshKey[ID]{all: true})
	}
	c.feedDown.Store(false)
	return dropped, refresh
}

// feedLost stops trusting the cache until the feed's next reset.
func (c *cache[T, ID]) feedLost() {
	c.lock()
	defer c.unlock()
	c.feedDown.Store(true)
	c.complete = false
	c.lostInflight()
}

// lostInflight records that the feed may have missed changes of the IDs
// being written. Callers hold c.mu.
func (c *cache[T, ID]) lostInflight() {
	for id, h := range c.inflight {
		h.lost = true
		c.inflight[id] = h
	}
}

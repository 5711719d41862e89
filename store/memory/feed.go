package memory

import (
	"fmt"
	"sync"
	"time"

	"github.com/nexusstore/nexus/store"
)

var _ store.ChangeFeed[string] = (*Backend[int, string])(nil)

// DefaultFeedQueue is the number of events a subscription may have waiting
// before they collapse into one store.FeedReset (see WithFeedQueue).
const DefaultFeedQueue = 10000

// errFeedDown is the cause FeedError events carry while SetFeedDown holds.
var errFeedDown = fmt.Errorf("memory: change feed down (SetFeedDown): %w", store.ErrUnavailable)

// subscription is one Subscribe call: a queue of events and the goroutine
// that delivers them.
type subscription[ID comparable] struct {
	fn    func(store.FeedEvent[ID])
	limit int

	mu    sync.Mutex
	queue []store.FeedEvent[ID]

	wake     chan struct{} // capacity 1: events are waiting
	stopping chan struct{} // closed by stop
	exited   chan struct{} // closed when the goroutine has returned
	stopOnce sync.Once
}

// Subscribe delivers every change committed to the backend from now on
// (saves and deletes, conditional ones included, by any caller) to fn. The
// first event, a store.FeedReset (or a store.FeedError while
// SetFeedDown(true) holds), is delivered before Subscribe returns: the feed
// is ready at once, so a store over it trusts its cache from the start.
// Without WithChangeFeed it returns an error matching store.ErrNoChangeFeed.
//
// Each subscription has a goroutine and a queue of its own: a write adds
// its event to the queue of every subscription, in commit order, and never
// waits for fn, which runs without the backend's lock held (so it may call
// the backend). When more than the WithFeedQueue bound (DefaultFeedQueue)
// of events are waiting for a slow fn, they are dropped and replaced by one
// store.FeedReset: the subscriber must then distrust what it knew, as after
// an outage.
//
// stop ends the subscription and returns once fn will not be called again;
// events still queued are dropped. It is idempotent, and must not be called
// from fn.
func (b *Backend[T, ID]) Subscribe(fn func(store.FeedEvent[ID])) (stop func(), err error) {
	if fn == nil {
		return nil, fmt.Errorf("memory: subscribe: %w: nil callback", store.ErrInvalidArgument)
	}
	if !b.feed {
		return nil, fmt.Errorf("memory: subscribe: %w (New was not given WithChangeFeed)", store.ErrNoChangeFeed)
	}
	s := &subscription[ID]{
		fn:       fn,
		limit:    b.feedQueue,
		wake:     make(chan struct{}, 1),
		stopping: make(chan struct{}),
		exited:   make(chan struct{}),
	}
	b.mu.Lock()
	if b.subs == nil {
		b.subs = make(map[*subscription[ID]]struct{})
	}
	b.subs[s] = struct{}{}
	first := store.FeedEvent[ID]{Kind: store.FeedReset}
	if b.feedDown {
		first = store.FeedEvent[ID]{Kind: store.FeedError, Err: errFeedDown}
	}
	b.mu.Unlock()
	// Changes committed from here on are queued behind the first event,
	// which is delivered here, before the goroutine starts: in order.
	fn(first)
	go s.run()
	return func() {
		s.stopOnce.Do(func() {
			b.mu.Lock()
			delete(b.subs, s)
			b.mu.Unlock()
			close(s.stopping)
		})
		<-s.exited
	}, nil
}

// SetFeedDown simulates a change feed that lost its source, as a
// networked backend's does when its connection drops. While on, changes
// are not delivered (they are lost, as notifications to a disconnected
// listener are); turning it on delivers a store.FeedError to every
// subscription, turning it off a store.FeedReset. The backend's calls are
// not affected (SetUnavailable is the knob for them).
func (b *Backend[T, ID]) SetFeedDown(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.feedDown == on {
		return
	}
	b.feedDown = on
	e := store.FeedEvent[ID]{Kind: store.FeedReset}
	if on {
		e = store.FeedEvent[ID]{Kind: store.FeedError, Err: errFeedDown}
	}
	for s := range b.subs {
		s.push(e)
	}
}

// publishLocked queues a committed change for every subscription. The
// caller holds b.mu for writing, so changes are queued in commit order.
func (b *Backend[T, ID]) publishLocked(id ID, deleted bool, version uint64, at time.Time) {
	if len(b.subs) == 0 || b.feedDown {
		return
	}
	e := store.FeedEvent[ID]{Kind: store.FeedChanged, ID: id, Deleted: deleted, Version: version, Committed: at}
	for s := range b.subs {
		s.push(e)
	}
}

// push queues e and wakes the goroutine. It never blocks. A full queue
// collapses into one FeedReset, which stands for e too when e is a change
// (the subscriber rereads what it needs); a FeedError or FeedReset still
// follows it.
func (s *subscription[ID]) push(e store.FeedEvent[ID]) {
	s.mu.Lock()
	switch {
	case len(s.queue) < s.limit:
		s.queue = append(s.queue, e)
	default:
		clear(s.queue)
		s.queue = append(s.queue[:0], store.FeedEvent[ID]{Kind: store.FeedReset})
		if e.Kind != store.FeedChanged {
			s.queue = append(s.queue, e)
		}
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default: // already woken
	}
}

// run delivers queued events until stop.
func (s *subscription[ID]) run() {
	defer close(s.exited)
	var batch []store.FeedEvent[ID]
	for {
		select {
		case <-s.stopping:
			return
		case <-s.wake:
		}
		s.mu.Lock()
		// Swap buffers: push appends to the emptied one while fn runs.
		batch, s.queue = s.queue, batch[:0]
		s.mu.Unlock()
		for i, e := range batch {
			select {
			case <-s.stopping:
				return
			default:
			}
			s.fn(e)
			batch[i] = store.FeedEvent[ID]{} // drop the reference to e.Err
		}
	}
}

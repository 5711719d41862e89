package memory_test

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

// feedLog records a subscription's events; hold, when set, blocks the
// callback on its first change until released.
type feedLog struct {
	mu     sync.Mutex
	events []store.FeedEvent[string]
	hold   chan struct{}
	held   bool
}

func (l *feedLog) fn(e store.FeedEvent[string]) {
	l.mu.Lock()
	l.events = append(l.events, e)
	first := e.Kind == store.FeedChanged && !l.held
	l.held = l.held || first
	l.mu.Unlock()
	if first && l.hold != nil {
		<-l.hold
	}
}

func (l *feedLog) got() []store.FeedEvent[string] {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]store.FeedEvent[string](nil), l.events...)
}

// kinds renders events compactly for comparisons: "reset", "error",
// "save a 1", "delete a 2".
func kinds(events []store.FeedEvent[string]) []string {
	out := make([]string, len(events))
	for i, e := range events {
		switch e.Kind {
		case store.FeedReset:
			out[i] = "reset"
		case store.FeedError:
			out[i] = "error"
		default:
			op := "save"
			if e.Deleted {
				op = "delete"
			}
			out[i] = op + " " + e.ID + " " + strconv.FormatUint(e.Version, 10)
		}
	}
	return out
}

func wantEvents(t *testing.T, what string, got []store.FeedEvent[string], want ...string) {
	t.Helper()
	g := kinds(got)
	if len(g) != len(want) {
		t.Fatalf("%s: events %q; want %q", what, g, want)
	}
	for i := range g {
		if g[i] != want[i] {
			t.Fatalf("%s: events %q; want %q", what, g, want)
		}
	}
}

func subscribe(t *testing.T, b *memory.Backend[int, string], l *feedLog) func() {
	t.Helper()
	stop, err := b.Subscribe(l.fn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return stop
}

func TestFeedDeliversChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		b := memory.New[int, string](memory.WithChangeFeed())
		mustSave(t, b, "before", 0) // before the subscription: not delivered
		var l feedLog
		subscribe(t, b, &l)

		v2, _ := b.SaveVersioned(ctx, "a", 1, store.VersionAbsent)
		v3, _ := b.SaveVersioned(ctx, "a", 2, v2.Version)
		if _, err := b.SaveVersioned(ctx, "a", 3, v2.Version); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("stale save: %v", err)
		}
		if _, err := b.Delete(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if ok, err := b.DeleteVersioned(ctx, "a", store.VersionAbsent); ok || err != nil {
			t.Fatalf("delete of an absent item = %v, %v", ok, err)
		}
		mustSave(t, b, "b", 4)
		synctest.Wait()
		got := l.got()
		wantEvents(t, "feed", got, "reset", "save a 2", "save a 3", "delete a 3", "save b 4")
		if !got[1].Committed.Equal(v2.Updated) || !got[2].Committed.Equal(v3.Updated) || got[3].Committed.IsZero() {
			t.Errorf("Committed times %v, %v, %v; want the saves' Updated %v, %v and the delete's time",
				got[1].Committed, got[2].Committed, got[3].Committed, v2.Updated, v3.Updated)
		}
	})
}

// TestFeedNeverBlocksWriters holds the callback on its first change while
// a hundred writes go through, then lets the queued events out in order.
func TestFeedNeverBlocksWriters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.New[int, string](memory.WithChangeFeed())
		l := feedLog{hold: make(chan struct{})}
		subscribe(t, b, &l)
		want := []string{"reset"}
		for i := range 100 {
			id := "k" + strconv.Itoa(i%7)
			v := mustSave(t, b, id, i) // would deadlock the bubble if it waited for the callback
			want = append(want, "save "+id+" "+strconv.FormatUint(v.Version, 10))
		}
		close(l.hold)
		synctest.Wait()
		wantEvents(t, "feed", l.got(), want...)
	})
}

// TestFeedQueueCollapses checks the queue bound: events beyond it collapse
// into one reset, and what follows still arrives.
func TestFeedQueueCollapses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.New[int, string](memory.WithChangeFeed(), memory.WithFeedQueue(4))
		l := feedLog{hold: make(chan struct{})}
		subscribe(t, b, &l)
		// The callback holds save 1; saves 2-5 fill the queue; 6 collapses
		// it into a reset; 7-9 fill it again; 10 collapses it.
		for i := 1; i <= 10; i++ {
			mustSave(t, b, "s"+strconv.Itoa(i), i)
			synctest.Wait()
		}
		b.SetFeedDown(true) // a full queue keeps a FeedError after its reset
		close(l.hold)
		synctest.Wait()
		wantEvents(t, "feed", l.got(), "reset", "save s1 1", "reset", "error")
	})
}

func TestFeedDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.New[int, string](memory.WithChangeFeed())
		var first, late feedLog
		subscribe(t, b, &first)
		mustSave(t, b, "a", 1)
		b.SetFeedDown(true)
		b.SetFeedDown(true) // no second error
		mustSave(t, b, "lost", 2)
		if _, err := b.Get(t.Context(), "lost"); err != nil {
			t.Errorf("Get while the feed is down: %v; the backend itself stays up", err)
		}
		subscribe(t, b, &late)
		b.SetFeedDown(false)
		mustSave(t, b, "b", 3)
		synctest.Wait()
		wantEvents(t, "first subscription", first.got(), "reset", "save a 1", "error", "reset", "save b 3")
		wantEvents(t, "subscription made while down", late.got(), "error", "reset", "save b 3")
		if err := late.got()[0].Err; !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("FeedError carries %v; want an error matching ErrUnavailable", err)
		}
	})
}

// TestFeedStop checks that stop waits for a running callback, that no
// callback runs after it, and that it is idempotent.
func TestFeedStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.New[int, string](memory.WithChangeFeed())
		l := feedLog{hold: make(chan struct{})}
		stop := subscribe(t, b, &l)
		mustSave(t, b, "held", 1)
		synctest.Wait() // the callback holds the change
		mustSave(t, b, "queued", 2)
		stopped := make(chan struct{})
		go func() {
			stop()
			close(stopped)
		}()
		synctest.Wait()
		select {
		case <-stopped:
			t.Fatal("stop returned while the callback was running")
		default:
		}
		close(l.hold)
		<-stopped
		stop()
		mustSave(t, b, "after", 3)
		synctest.Wait()
		// The queued save is dropped: stop ends delivery.
		wantEvents(t, "feed", l.got(), "reset", "save held 1")
	})
}

// TestFeedConcurrentWriters has writers on several goroutines and two
// subscribers: each gets every change, each ID's versions in order.
func TestFeedConcurrentWriters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.New[int, string](memory.WithChangeFeed())
		var l1, l2 feedLog
		subscribe(t, b, &l1)
		subscribe(t, b, &l2)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range 50 {
					id := "k" + strconv.Itoa((w+i)%5)
					if i%10 == 9 {
						_, _ = b.Delete(t.Context(), id)
						continue
					}
					mustSave(t, b, id, i)
				}
			})
		}
		wg.Wait()
		synctest.Wait()
		e1, e2 := l1.got(), l2.got()
		wantEvents(t, "second subscriber, compared with the first", e2, kinds(e1)...)
		last := map[string]uint64{}
		changes := 0
		for _, e := range e1[1:] {
			changes++
			if e.Version < last[e.ID] || (e.Version == last[e.ID] && !e.Deleted) {
				t.Fatalf("%s: version %d after %d", e.ID, e.Version, last[e.ID])
			}
			last[e.ID] = e.Version
		}
		if changes < 4*45 {
			t.Errorf("%d changes delivered; want the 180 saves and the deletes that found an item", changes)
		}
	})
}

func TestFeedInvalid(t *testing.T) {
	if _, err := memory.New[int, string](memory.WithChangeFeed()).Subscribe(nil); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("Subscribe(nil): %v; want ErrInvalidArgument", err)
	}
	defer func() {
		if r := recover(); r == nil {
			t.Error("WithFeedQueue(0) did not panic")
		}
	}()
	memory.New[int, string](memory.WithFeedQueue(0))
}

func mustSave(t *testing.T, b *memory.Backend[int, string], id string, n int) store.Versioned[int] {
	t.Helper()
	v, err := b.SaveVersioned(t.Context(), id, n, store.VersionAny)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

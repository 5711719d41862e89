package postgres_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/postgres"
)

// eventTimeout bounds the wait for one feed event.
const eventTimeout = 10 * time.Second

// recorder collects the events of one subscription.
type recorder[ID comparable] struct {
	events  chan store.FeedEvent[ID]
	stopped atomic.Bool // set once stop returned: fn must not run after
	late    atomic.Int64
}

// subscribe subscribes a recorder to b, stopped when t ends.
func subscribe[T any, ID postgres.Key](t testing.TB, b *postgres.Backend[T, ID]) *recorder[ID] {
	t.Helper()
	r := &recorder[ID]{events: make(chan store.FeedEvent[ID], 100000)}
	stop, err := b.Subscribe(func(e store.FeedEvent[ID]) {
		if r.stopped.Load() {
			r.late.Add(1)
		}
		select {
		case r.events <- e:
		default:
			panic("recorder full")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop()
		r.stopped.Store(true)
	})
	return r
}

// next returns the next event, which must be of kind want.
func (r *recorder[ID]) next(t testing.TB, want store.FeedEventKind) store.FeedEvent[ID] {
	t.Helper()
	tm := time.NewTimer(eventTimeout)
	defer tm.Stop()
	select {
	case e := <-r.events:
		if e.Kind != want {
			t.Fatalf("feed event %+v; want kind %v", e, want)
		}
		return e
	case <-tm.C:
		t.Fatalf("no feed event within %v; want kind %v", eventTimeout, want)
	}
	panic("unreachable")
}

// empty checks that no event is waiting. It can only fail; the event that
// must follow is the real check.
func (r *recorder[ID]) empty(t testing.TB) {
	t.Helper()
	select {
	case e := <-r.events:
		t.Fatalf("unexpected feed event %+v", e)
	default:
	}
}

func wantChange[ID comparable](t testing.TB, e store.FeedEvent[ID], id ID, deleted bool, version uint64) {
	t.Helper()
	if e.ID != id || e.Deleted != deleted || e.Version != version {
		t.Fatalf("feed event %+v; want ID %v, deleted %t, version %d", e, id, deleted, version)
	}
}

// TestFeedEvents checks what each kind of write sends: saves and deletes
// with their versions, a transaction's writes at its commit (and nothing
// for a rollback), a TRUNCATE as a reset, plain SQL writers too.
func TestFeedEvents(t *testing.T) {
	ctx := t.Context()
	pool := sharedPool(t)
	table := newTable()
	b := open[note, string](t, pool, postgres.WithTable(table))
	r := subscribe(t, b)
	r.next(t, store.FeedReset) // listening from here on

	before := time.Now()
	v1 := mustSave(t, b, "a", note{ID: "a"})
	e := r.next(t, store.FeedChanged)
	wantChange(t, e, "a", false, v1.Version)
	if !e.Committed.Equal(v1.Updated) || e.Committed.Before(before.Add(-time.Second)) || e.Committed.After(time.Now()) {
		t.Errorf("Committed = %v; want the save's Updated %v, between %v and now", e.Committed, v1.Updated, before)
	}

	v2, err := b.SaveVersioned(ctx, "a", note{ID: "a", Text: "2"}, v1.Version)
	if err != nil {
		t.Fatal(err)
	}
	wantChange(t, r.next(t, store.FeedChanged), "a", false, v2.Version)
	if _, err := b.DeleteVersioned(ctx, "a", v2.Version); err != nil {
		t.Fatal(err)
	}
	wantChange(t, r.next(t, store.FeedChanged), "a", true, v2.Version)

	// A transaction: nothing until Commit, then its writes in order.
	tx, err := b.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := tx.Save(ctx, "b", note{ID: "b"})
	tc, _ := tx.Save(ctx, "c", note{ID: "c"})
	if _, err := tx.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	r.empty(t)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	wantChange(t, r.next(t, store.FeedChanged), "b", false, tb.Version)
	wantChange(t, r.next(t, store.FeedChanged), "c", false, tc.Version)
	wantChange(t, r.next(t, store.FeedChanged), "b", true, tb.Version)

	tx, err = b.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Save(ctx, "rolled back", note{}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	// Plain SQL, after the rollback: the next event is this, not the
	// rolled-back save.
	execSQL(t, pool, `INSERT INTO "`+table+`" (id, data) VALUES ('sql', '{}')`)
	sql, err := b.GetVersioned(ctx, "sql")
	if err != nil {
		t.Fatal(err)
	}
	wantChange(t, r.next(t, store.FeedChanged), "sql", false, sql.Version)

	execSQL(t, pool, `TRUNCATE "`+table+`"`)
	r.next(t, store.FeedReset)

	// A failed conditional write changes nothing and sends nothing.
	if _, err := b.SaveVersioned(ctx, "c", note{}, 1); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale conditional save: %v", err)
	}
	v3 := mustSave(t, b, "d", note{ID: "d"})
	wantChange(t, r.next(t, store.FeedChanged), "d", false, v3.Version)
}

// TestFeedIntegerIDs checks that events carry integer IDs.
func TestFeedIntegerIDs(t *testing.T) {
	b := open[note, int32](t, sharedPool(t), postgres.WithTable(newTable()))
	r := subscribe(t, b)
	r.next(t, store.FeedReset)
	v := mustSave(t, b, -7, note{})
	wantChange(t, r.next(t, store.FeedChanged), -7, false, v.Version)
}

// TestFeedSubscribers checks that every subscriber, of one Backend or of
// several on one table, gets every event, and that stop and Close end
// subscriptions for good.
func TestFeedSubscribers(t *testing.T) {
	pool := sharedPool(t)
	table := newTable()
	a := open[note, string](t, pool, postgres.WithTable(table))
	other, err := postgres.New[note, string](t.Context(), pool, postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	recs := []*recorder[string]{subscribe(t, a), subscribe(t, a), subscribe(t, other)}
	for _, r := range recs {
		r.next(t, store.FeedReset)
	}
	v := mustSave(t, a, "x", note{ID: "x"})
	for _, r := range recs {
		wantChange(t, r.next(t, store.FeedChanged), "x", false, v.Version)
	}

	// Close ends the other Backend's subscription: no more events, and its
	// stop function (still called at cleanup) returns at once.
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	recs[2].stopped.Store(true)
	v = mustSave(t, a, "y", note{ID: "y"})
	for _, r := range recs[:2] {
		wantChange(t, r.next(t, store.FeedChanged), "y", false, v.Version)
	}
	if n := recs[2].late.Load(); n != 0 || len(recs[2].events) != 0 {
		t.Errorf("a subscription of a closed Backend got %d events after Close", n+int64(len(recs[2].events)))
	}
}

// TestFeedStop checks that stop returns once fn can no longer run, also
// while fn is running, and that it is idempotent.
func TestFeedStop(t *testing.T) {
	b := open[note, string](t, sharedPool(t), postgres.WithTable(newTable()))
	entered := make(chan struct{})
	release := make(chan struct{})
	var calls, afterStop atomic.Int64
	var stopped atomic.Bool
	stop, err := b.Subscribe(func(e store.FeedEvent[string]) {
		if stopped.Load() {
			afterStop.Add(1)
		}
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	<-entered // fn is running (the first FeedReset)
	done := make(chan struct{})
	go func() {
		stop()
		stopped.Store(true)
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("stop returned while fn was still running")
	case <-time.After(50 * time.Millisecond): // stop must wait for fn: a bounded look for the failure
	}
	close(release)
	<-done
	stop() // idempotent
	mustSave(t, b, "a", note{})
	if n := afterStop.Load(); n != 0 {
		t.Errorf("fn called %d times after stop returned", n)
	}
}

func TestFeedNilCallback(t *testing.T) {
	b := open[note, string](t, sharedPool(t), postgres.WithTable(newTable()))
	if _, err := b.Subscribe(nil); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("Subscribe(nil): %v; want ErrInvalidArgument", err)
	}
}

// TestNewUnreachable checks New against a server that is not there.
func TestNewUnreachable(t *testing.T) {
	cfg, err := pgxpool.ParseConfig(fmt.Sprintf("postgres://nexus@127.0.0.1:%d/x?sslmode=disable&connect_timeout=5", closedPort(t)))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, err = postgres.New[note, string](t.Context(), pool)
	if !errors.Is(err, store.ErrUnavailable) || !strings.HasPrefix(err.Error(), "postgres: new: ") {
		t.Errorf("New on an unreachable server: %v; want a postgres: error matching ErrUnavailable", err)
	}
}

// closedPort returns a port on 127.0.0.1 that nothing listens on (it was
// free a moment ago).
func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

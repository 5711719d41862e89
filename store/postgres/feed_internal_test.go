package postgres

import (
	"testing"
	"time"

	"github.com/nexusstore/nexus/internal/pgtest"
	"github.com/nexusstore/nexus/store"
)

func TestParseNotification(t *testing.T) {
	at := time.UnixMicro(1700000000123456)
	changed := func(id string, deleted bool, version uint64) store.FeedEvent[string] {
		return store.FeedEvent[string]{Kind: store.FeedChanged, ID: id, Deleted: deleted, Version: version, Committed: at}
	}
	reset := store.FeedEvent[string]{Kind: store.FeedReset}
	tests := []struct {
		payload string
		want    store.FeedEvent[string]
	}{
		{"s,7,1700000000123456,u1", changed("u1", false, 7)},
		{"d,8,1700000000123456,u1", changed("u1", true, 8)},
		{"s,9,1700000000123456,a,b,c", changed("a,b,c", false, 9)}, // the ID is the rest, commas included
		{"s,9,1700000000123456,", changed("", false, 9)},
		{"r", reset},
		{"", reset},
		{"x,1,2,id", reset},
		{"s,-1,1700000000123456,id", reset},
		{"s,1,soon,id", reset},
		{"s,1,2", reset},
	}
	for _, tt := range tests {
		if got := parseNotification[string](tt.payload); got != tt.want {
			t.Errorf("parseNotification(%q) = %+v; want %+v", tt.payload, got, tt.want)
		}
	}

	if got := parseNotification[int8]("s,1,2,127"); got.Kind != store.FeedChanged || got.ID != 127 {
		t.Errorf("int8 ID 127: %+v", got)
	}
	for _, p := range []string{"s,1,2,128", "s,1,2,x", "s,1,2,"} {
		if got := parseNotification[int8](p); got.Kind != store.FeedReset {
			t.Errorf("int8 ID from %q: %+v; want a reset (no int8 can name that row)", p, got)
		}
	}
	if got := parseNotification[uint16]("s,1,2,-1"); got.Kind != store.FeedReset {
		t.Errorf("uint16 ID -1: %+v; want a reset", got)
	}
}

func TestJitter(t *testing.T) {
	for range 1000 {
		if d := jitter(time.Second); d < 800*time.Millisecond || d > 1200*time.Millisecond {
			t.Fatalf("jitter(1s) = %v; want within ±20%%", d)
		}
	}
}

// TestFeedHealthCheck shortens the health check's interval and lets several
// pass without notifications: the checks keep the connection (an
// interrupted wait leaves it usable), so the next event is the next change,
// with no FeedError or FeedReset in between.
func TestFeedHealthCheck(t *testing.T) {
	const interval = 20 * time.Millisecond
	pool := pgtest.Pool(t, pgtest.Shared(t).Database(t))
	b, err := New[string, string](t.Context(), pool, WithTable("health"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.feed.health = interval
	events := make(chan store.FeedEvent[string], 100)
	stop, err := b.Subscribe(func(e store.FeedEvent[string]) { events <- e })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if e := <-events; e.Kind != store.FeedReset {
		t.Fatalf("first event %+v; want a reset", e)
	}
	// Quiet for ten intervals: the time passing is what is tested.
	time.Sleep(10 * interval)
	if _, err := b.Save(t.Context(), "a", "a"); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-events:
		if e.Kind != store.FeedChanged || e.ID != "a" {
			t.Fatalf("after quiet health checks, event %+v; want the change of a", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event for a save after quiet health checks")
	}
}

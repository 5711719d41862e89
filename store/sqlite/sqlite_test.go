package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/sqlite"
)

// note is the item type of most tests here.
type note struct {
	ID   string   `json:"id"`
	Text string   `json:"text"`
	Tags []string `json:"tags,omitempty"`
}

// open opens a Backend on path and closes it when the test ends.
func open[T any, ID sqlite.Key](t testing.TB, path string, opts ...sqlite.Option) *sqlite.Backend[T, ID] {
	t.Helper()
	b, err := sqlite.Open[T, ID](path, opts...)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// tempDB returns a database path in a fresh directory.
func tempDB(t testing.TB) string {
	return filepath.Join(t.TempDir(), "nexus.db")
}

// rawDB opens the file with the driver directly, to inspect or corrupt it.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustSave[T any, ID sqlite.Key](t testing.TB, b *sqlite.Backend[T, ID], id ID, item T) store.Versioned[T] {
	t.Helper()
	v, err := b.SaveVersioned(context.Background(), id, item, store.VersionAny)
	if err != nil {
		t.Fatalf("SaveVersioned(%v): %v", id, err)
	}
	return v
}

func noteIDs(items []note) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

func TestCRUD(t *testing.T) {
	ctx := context.Background()
	b := open[note, string](t, tempDB(t))

	_, err := b.Get(ctx, "a")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of absent ID: %v, want ErrNotFound", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "sqlite: ") || !strings.Contains(msg, `"a"`) {
		t.Errorf("Get error %q: want the sqlite: prefix and the ID", msg)
	}

	in := note{ID: "a", Text: "first", Tags: []string{"x"}}
	got, err := b.Save(ctx, "a", in)
	if err != nil || !equalNote(got, in) {
		t.Fatalf("Save = %+v, %v", got, err)
	}
	got, err = b.Get(ctx, "a")
	if err != nil || !equalNote(got, in) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, in)
	}

	before := time.Now()
	v := mustSave(t, b, "a", note{ID: "a", Text: "second"})
	if v.Version != 2 {
		t.Errorf("version after second save = %d, want 2", v.Version)
	}
	gv, err := b.GetVersioned(ctx, "a")
	if err != nil || gv.Version != 2 || gv.Item.Text != "second" || !gv.Updated.Equal(v.Updated) || gv.Updated.Before(before.Add(-time.Second)) {
		t.Errorf("GetVersioned = %+v, %v; want version 2 saved at %v", gv, err, v.Updated)
	}

	ok, err := b.Delete(ctx, "a")
	if err != nil || !ok {
		t.Fatalf("Delete = %v, %v; want true", ok, err)
	}
	ok, err = b.Delete(ctx, "a")
	if err != nil || ok {
		t.Fatalf("second Delete = %v, %v; want false", ok, err)
	}
	if _, err := b.Get(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	// A deleted item saved again continues above its old versions (ABA).
	if v := mustSave(t, b, "a", in); v.Version != 3 {
		t.Errorf("version of an item deleted at version 2 and saved again = %d, want 3", v.Version)
	}
}

func equalNote(a, b note) bool {
	return a.ID == b.ID && a.Text == b.Text && slices.Equal(a.Tags, b.Tags)
}

func TestGetAllOrderFilterLimit(t *testing.T) {
	ctx := context.Background()
	b := open[note, string](t, tempDB(t))
	all, err := b.GetAll(ctx, store.Query[note]{})
	if err != nil || all == nil || len(all) != 0 {
		t.Fatalf("GetAll of an empty table = %#v, %v; want an empty, non-nil slice", all, err)
	}
	for _, id := range []string{"c", "a", "d", "b", "e"} {
		mustSave(t, b, id, note{ID: id, Text: "v1"})
	}
	mustSave(t, b, "a", note{ID: "a", Text: "v2"}) // keeps its place
	if _, err := b.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	mustSave(t, b, "d", note{ID: "d", Text: "again"}) // a new item: last

	odd := func(n note) bool { return n.ID != "a" && n.ID != "b" }
	tests := []struct {
		name string
		q    store.Query[note]
		want []string
	}{
		{"all", store.Query[note]{}, []string{"c", "a", "b", "e", "d"}},
		{"limit", store.Query[note]{Limit: 2}, []string{"c", "a"}},
		{"limit above count", store.Query[note]{Limit: 10}, []string{"c", "a", "b", "e", "d"}},
		{"negative limit", store.Query[note]{Limit: -1}, []string{"c", "a", "b", "e", "d"}},
		{"filter", store.Query[note]{Filter: odd}, []string{"c", "e", "d"}},
		{"filter and limit", store.Query[note]{Filter: odd, Limit: 2}, []string{"c", "e"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, err := b.GetAll(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := noteIDs(items); !slices.Equal(got, tt.want) {
				t.Errorf("GetAll IDs = %v, want %v", got, tt.want)
			}
			vs, err := b.GetAllVersioned(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range vs {
				if v.Item.ID != tt.want[i] {
					t.Errorf("GetAllVersioned[%d] = %q, want %q", i, v.Item.ID, tt.want[i])
				}
				// a was saved twice; d was deleted at version 1 and saved again.
				if want := uint64(1) + uint64(b2i(v.Item.ID == "a" || v.Item.ID == "d")); v.Version != want {
					t.Errorf("GetAllVersioned %q version = %d, want %d", v.Item.ID, v.Version, want)
				}
			}
		})
	}

	// The filter stops being called once the limit is reached.
	calls := 0
	_, err = b.GetAll(ctx, store.Query[note]{Filter: func(note) bool { calls++; return true }, Limit: 2})
	if err != nil || calls != 2 {
		t.Errorf("filter calls with limit 2 = %d (err %v), want 2", calls, err)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestVersioned(t *testing.T) {
	ctx := context.Background()
	b := open[note, string](t, tempDB(t))
	item := note{ID: "a", Text: "one"}

	v, err := b.SaveVersioned(ctx, "a", item, store.VersionAbsent)
	if err != nil || v.Version != 1 {
		t.Fatalf("create with VersionAbsent = %+v, %v", v, err)
	}

	conflict := func(t *testing.T, err error) *store.ConflictError[note] {
		t.Helper()
		var ce *store.ConflictError[note]
		if !errors.As(err, &ce) || !errors.Is(err, store.ErrConflict) {
			t.Fatalf("err = %v, want a *store.ConflictError matching ErrConflict", err)
		}
		if !strings.HasPrefix(err.Error(), "sqlite: ") {
			t.Errorf("err = %q, want the sqlite: prefix", err)
		}
		return ce
	}

	t.Run("absent expected, item exists", func(t *testing.T) {
		_, err := b.SaveVersioned(ctx, "a", note{ID: "a", Text: "other"}, store.VersionAbsent)
		ce := conflict(t, err)
		if ce.RemoteDeleted || ce.Remote.Version != 1 || ce.Remote.Item.Text != "one" || ce.Expected != store.VersionAbsent {
			t.Errorf("conflict = %+v", ce)
		}
	})
	t.Run("matching version", func(t *testing.T) {
		v, err := b.SaveVersioned(ctx, "a", note{ID: "a", Text: "two"}, 1)
		if err != nil || v.Version != 2 || v.Item.Text != "two" {
			t.Fatalf("SaveVersioned(expect 1) = %+v, %v", v, err)
		}
	})
	t.Run("stale version", func(t *testing.T) {
		_, err := b.SaveVersioned(ctx, "a", note{ID: "a", Text: "stale"}, 1)
		ce := conflict(t, err)
		if ce.RemoteDeleted || ce.Remote.Version != 2 || ce.Remote.Item.Text != "two" || ce.Expected != 1 {
			t.Errorf("conflict = %+v", ce)
		}
		if got, _ := b.Get(ctx, "a"); got.Text != "two" {
			t.Errorf("a conflicting save changed the item to %+v", got)
		}
	})
	t.Run("version beyond int64", func(t *testing.T) {
		_, err := b.SaveVersioned(ctx, "a", item, math.MaxUint64-1)
		conflict(t, err)
	})
	t.Run("expected version, item absent", func(t *testing.T) {
		_, err := b.SaveVersioned(ctx, "gone", item, 3)
		ce := conflict(t, err)
		if !ce.RemoteDeleted || ce.Expected != 3 {
			t.Errorf("conflict = %+v, want RemoteDeleted", ce)
		}
	})
	t.Run("delete", func(t *testing.T) {
		_, err := b.DeleteVersioned(ctx, "a", 1)
		if ce := conflict(t, err); ce.Remote.Version != 2 {
			t.Errorf("conflict = %+v", ce)
		}
		_, err = b.DeleteVersioned(ctx, "a", store.VersionAbsent)
		conflict(t, err)
		ok, err := b.DeleteVersioned(ctx, "a", 2)
		if err != nil || !ok {
			t.Fatalf("DeleteVersioned(expect 2) = %v, %v", ok, err)
		}
		for _, expect := range []uint64{store.VersionAbsent, store.VersionAny} {
			ok, err := b.DeleteVersioned(ctx, "a", expect)
			if err != nil || ok {
				t.Errorf("DeleteVersioned(absent, %d) = %v, %v; want false, nil", expect, ok, err)
			}
		}
		_, err = b.DeleteVersioned(ctx, "a", 2)
		if ce := conflict(t, err); !ce.RemoteDeleted {
			t.Errorf("conflict = %+v, want RemoteDeleted", ce)
		}
	})
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	b, err := sqlite.Open[note, string](path)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"z", "y", "x"} {
		mustSave(t, b, id, note{ID: id, Text: "t-" + id, Tags: []string{id}})
	}
	mustSave(t, b, "z", note{ID: "z", Text: "t-z2"})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := b.Get(ctx, "z"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}

	b = open[note, string](t, path)
	vs, err := b.GetAllVersioned(ctx, store.Query[note]{})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id, text string
		version  uint64
	}{{"z", "t-z2", 2}, {"y", "t-y", 1}, {"x", "t-x", 1}}
	if len(vs) != len(want) {
		t.Fatalf("after reopen: %d items, want %d", len(vs), len(want))
	}
	for i, w := range want {
		if vs[i].Item.ID != w.id || vs[i].Item.Text != w.text || vs[i].Version != w.version {
			t.Errorf("item %d = %+v v%d, want %s %s v%d", i, vs[i].Item, vs[i].Version, w.id, w.text, w.version)
		}
	}
	if v := mustSave(t, b, "w", note{ID: "w"}); v.Version != 1 {
		t.Errorf("new item after reopen: version %d", v.Version)
	}
	items, _ := b.GetAll(ctx, store.Query[note]{})
	if got := noteIDs(items); !slices.Equal(got, []string{"z", "y", "x", "w"}) {
		t.Errorf("order after reopen and insert = %v", got)
	}
}

// TestConcurrentTransactions runs 8 goroutines x 50 read-then-write
// transactions on one item, through two Backends on one file (as two
// processes would). Immediate transactions serialize them: none fails and
// none is lost.
func TestConcurrentTransactions(t *testing.T) {
	const goroutines, perGoroutine = 8, 50
	ctx := context.Background()
	path := tempDB(t)
	backends := []*sqlite.Backend[note, string]{open[note, string](t, path), open[note, string](t, path)}
	mustSave(t, backends[0], "counter", note{ID: "counter", Text: "0"})

	var wg sync.WaitGroup
	errs := make(chan error, goroutines*perGoroutine)
	for g := range goroutines {
		b := backends[g%len(backends)]
		wg.Go(func() {
			for range perGoroutine {
				errs <- func() error {
					tx, err := b.Begin(ctx)
					if err != nil {
						return err
					}
					defer tx.Rollback()
					v, err := tx.Get(ctx, "counter")
					if err != nil {
						return err
					}
					v.Item.Tags = append(v.Item.Tags, "x")
					if _, err := tx.Save(ctx, "counter", v.Item); err != nil {
						return err
					}
					return tx.Commit()
				}()
			}
		})
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
			if failed <= 3 {
				t.Errorf("transaction failed: %v", err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d transactions failed", failed, goroutines*perGoroutine)
	}
	v, err := backends[1].GetVersioned(ctx, "counter")
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(1 + goroutines*perGoroutine); v.Version != want || len(v.Item.Tags) != goroutines*perGoroutine {
		t.Errorf("final version %d with %d tags, want version %d with %d tags", v.Version, len(v.Item.Tags), want, goroutines*perGoroutine)
	}
}

// TestConcurrentConditionalWrites runs 8 goroutines x 50 rounds of
// GetVersioned then SaveVersioned at the version read, without a backend
// transaction. Losers get conflicts, never SQLITE_BUSY, and the winners
// account for every version.
func TestConcurrentConditionalWrites(t *testing.T) {
	const goroutines, perGoroutine = 8, 50
	ctx := context.Background()
	path := tempDB(t)
	backends := []*sqlite.Backend[note, string]{open[note, string](t, path), open[note, string](t, path)}
	mustSave(t, backends[0], "counter", note{ID: "counter"})

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		wins      int
		conflicts int
		others    []error
	)
	for g := range goroutines {
		b := backends[g%len(backends)]
		wg.Go(func() {
			for range perGoroutine {
				v, err := b.GetVersioned(ctx, "counter")
				if err == nil {
					v.Item.Tags = append(v.Item.Tags, "x")
					_, err = b.SaveVersioned(ctx, "counter", v.Item, v.Version)
				}
				mu.Lock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, store.ErrConflict):
					conflicts++
				default:
					others = append(others, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for i, err := range others {
		if i < 3 {
			t.Errorf("unexpected error: %v", err)
		}
	}
	if len(others) > 0 {
		t.Fatalf("%d errors other than conflicts (wins %d, conflicts %d)", len(others), wins, conflicts)
	}
	v, err := backends[0].GetVersioned(ctx, "counter")
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != uint64(1+wins) || len(v.Item.Tags) != wins || wins+conflicts != goroutines*perGoroutine {
		t.Errorf("final version %d, %d tags; wins %d, conflicts %d", v.Version, len(v.Item.Tags), wins, conflicts)
	}
	t.Logf("wins %d, conflicts %d", wins, conflicts)
}

type orderID int64

type order struct {
	ID    orderID `json:"id"`
	Total int     `json:"total"`
}

func TestIntegerIDs(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	b := open[order, orderID](t, path, sqlite.WithTable("orders"))
	for _, id := range []orderID{42, -7, math.MaxInt64, 0} {
		mustSave(t, b, id, order{ID: id, Total: int(id % 1000)})
	}
	got, err := b.Get(ctx, -7)
	if err != nil || got.ID != -7 {
		t.Fatalf("Get(-7) = %+v, %v", got, err)
	}
	_, err = b.Get(ctx, 43)
	if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "43") {
		t.Errorf("Get(43) error = %v, want ErrNotFound naming 43", err)
	}
	all, err := b.GetAll(ctx, store.Query[order]{})
	if err != nil || len(all) != 4 || all[0].ID != 42 || all[3].ID != 0 {
		t.Errorf("GetAll = %+v, %v", all, err)
	}

	var typ string
	if err := rawDB(t, path).QueryRow(`SELECT type FROM pragma_table_info('orders') WHERE name = 'id'`).Scan(&typ); err != nil || typ != "INTEGER" {
		t.Errorf("id column type = %q, %v; want INTEGER", typ, err)
	}

	t.Run("uint out of range", func(t *testing.T) {
		u := open[order, uint](t, path, sqlite.WithTable("unsigned"))
		if _, err := u.Save(ctx, math.MaxInt64, order{}); err != nil {
			t.Fatalf("Save(MaxInt64): %v", err)
		}
		_, err := u.Save(ctx, math.MaxInt64+1, order{})
		if !errors.Is(err, store.ErrInvalidArgument) || !strings.Contains(err.Error(), "9223372036854775808") {
			t.Errorf("Save(MaxInt64+1) error = %v, want ErrInvalidArgument naming the ID", err)
		}
		if _, err := u.Get(ctx, math.MaxUint); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("Get(MaxUint) error = %v, want ErrInvalidArgument", err)
		}
	})
	t.Run("other key type on the same table", func(t *testing.T) {
		_, err := sqlite.Open[order, string](path, sqlite.WithTable("orders"))
		if err == nil || !strings.Contains(err.Error(), "TEXT") {
			t.Errorf("Open with string IDs on an INTEGER table: %v, want an error", err)
		}
	})
}

func TestWithTable(t *testing.T) {
	path := tempDB(t)
	for _, name := range []string{"notes", "order", "_x1", strings.Repeat("t", 64)} {
		b := open[note, string](t, path, sqlite.WithTable(name))
		mustSave(t, b, "k", note{ID: "k", Text: name})
	}
	// The tables are separate.
	b := open[note, string](t, path, sqlite.WithTable("order"))
	if got, err := b.Get(context.Background(), "k"); err != nil || got.Text != "order" {
		t.Errorf("Get from table order = %+v, %v", got, err)
	}

	bad := []string{"", "1abc", "two words", `x"; DROP TABLE items; --`, "sqlite_master", "SQLITE_x", "naïve", strings.Repeat("t", 65)}
	for _, name := range bad {
		t.Run(name, func(t *testing.T) {
			b, err := sqlite.Open[note, string](path, sqlite.WithTable(name))
			if err == nil {
				b.Close()
				t.Fatalf("Open with table %q succeeded", name)
			}
			if !errors.Is(err, store.ErrInvalidArgument) || !strings.Contains(err.Error(), "WithTable") {
				t.Errorf("error %q: want ErrInvalidArgument naming WithTable", err)
			}
		})
	}
}

func TestIncompatibleTable(t *testing.T) {
	path := tempDB(t)
	if _, err := rawDB(t, path).Exec(`CREATE TABLE legacy (id TEXT PRIMARY KEY, body TEXT)`); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open[note, string](path, sqlite.WithTable("legacy"))
	if err == nil || !strings.Contains(err.Error(), `"data"`) {
		t.Errorf("Open on a table without data column: %v, want an error naming the column", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("this is not a database\n", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		invalid    bool // matches store.ErrInvalidArgument
	}{
		{"missing directory", filepath.Join(dir, "no", "such", "dir", "x.db"), false},
		{"path is a directory", dir, false},
		{"not a database", notDB, false},
		{"empty path", "", true},
		{"memory", ":memory:", true},
		{"URI", "file:x.db?mode=memory", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := sqlite.Open[note, string](tt.path)
			if err == nil {
				b.Close()
				t.Fatalf("Open(%q) succeeded", tt.path)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "sqlite: open ") || !strings.Contains(msg, tt.path) {
				t.Errorf("error %q: want the sqlite: open prefix and the path", msg)
			}
			if got := errors.Is(err, store.ErrInvalidArgument); got != tt.invalid {
				t.Errorf("errors.Is(%v, ErrInvalidArgument) = %t, want %t", err, got, tt.invalid)
			}
			t.Log(err)
		})
	}
}

func TestPathEscaping(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir%20with #odd?chars")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "db?name#1%41.sqlite")
	b := open[note, string](t, path)
	mustSave(t, b, "a", note{ID: "a"})
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not at the given path: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "db?name#1%41.sqlite") {
			t.Errorf("unexpected file %q beside the database", e.Name())
		}
	}
}

func TestTx(t *testing.T) {
	ctx := context.Background()
	b := open[note, string](t, tempDB(t))
	mustSave(t, b, "keep", note{ID: "keep", Text: "k"})
	mustSave(t, b, "drop", note{ID: "drop", Text: "d"})

	t.Run("commit", func(t *testing.T) {
		tx, err := b.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		v, err := tx.Save(ctx, "new", note{ID: "new", Text: "n"})
		if err != nil || v.Version != 1 {
			t.Fatalf("tx.Save = %+v, %v", v, err)
		}
		if v, err := tx.Save(ctx, "keep", note{ID: "keep", Text: "k2"}); err != nil || v.Version != 2 {
			t.Fatalf("tx.Save(keep) = %+v, %v", v, err)
		}
		if got, err := tx.Get(ctx, "new"); err != nil || got.Item.Text != "n" || got.Version != 1 {
			t.Errorf("tx.Get of its own write = %+v, %v", got, err)
		}
		if ok, err := tx.Delete(ctx, "drop"); err != nil || !ok {
			t.Errorf("tx.Delete = %v, %v", ok, err)
		}
		if _, err := tx.Get(ctx, "drop"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("tx.Get of its own delete: %v, want ErrNotFound", err)
		}
		// Others do not see uncommitted writes.
		if _, err := b.Get(ctx, "new"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get outside the tx sees its write: %v", err)
		}
		if got, _ := b.Get(ctx, "keep"); got.Text != "k" {
			t.Errorf("Get outside the tx = %+v", got)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Errorf("Rollback after Commit = %v, want nil", err)
		}
		if _, err := tx.Get(ctx, "new"); !errors.Is(err, store.ErrTxDone) {
			t.Errorf("tx.Get after Commit: %v, want ErrTxDone", err)
		}
		if err := tx.Commit(); !errors.Is(err, store.ErrTxDone) {
			t.Errorf("second Commit: %v, want ErrTxDone", err)
		}
		items, _ := b.GetAll(ctx, store.Query[note]{})
		if got := noteIDs(items); !slices.Equal(got, []string{"keep", "new"}) {
			t.Errorf("after commit: %v", got)
		}
	})
	t.Run("rollback", func(t *testing.T) {
		tx, err := b.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Save(ctx, "temp", note{ID: "temp"}); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Delete(ctx, "keep"); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Errorf("second Rollback = %v", err)
		}
		items, _ := b.GetAll(ctx, store.Query[note]{})
		if got := noteIDs(items); !slices.Equal(got, []string{"keep", "new"}) {
			t.Errorf("after rollback: %v", got)
		}
	})
	t.Run("context ends the transaction", func(t *testing.T) {
		tctx, cancel := context.WithCancel(ctx)
		tx, err := b.Begin(tctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Save(tctx, "cancelled", note{ID: "cancelled"}); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := tx.Commit(); err == nil {
			t.Error("Commit after the context was cancelled succeeded")
		}
		if err := tx.Rollback(); err != nil {
			t.Errorf("Rollback = %v", err)
		}
		if _, err := b.Get(ctx, "cancelled"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("write of a cancelled transaction is visible: %v", err)
		}
		// The write lock was released: a new write goes through.
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := b.Save(wctx, "after", note{ID: "after"}); err != nil {
			t.Errorf("Save after a cancelled transaction: %v", err)
		}
	})
}

func TestContextCancelled(t *testing.T) {
	b := open[note, string](t, tempDB(t))
	mustSave(t, b, "a", note{ID: "a"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]func() error{
		"Get":             func() error { _, err := b.Get(ctx, "a"); return err },
		"GetAll":          func() error { _, err := b.GetAll(ctx, store.Query[note]{}); return err },
		"Save":            func() error { _, err := b.Save(ctx, "a", note{}); return err },
		"SaveVersioned":   func() error { _, err := b.SaveVersioned(ctx, "a", note{}, 1); return err },
		"Delete":          func() error { _, err := b.Delete(ctx, "a"); return err },
		"DeleteVersioned": func() error { _, err := b.DeleteVersioned(ctx, "a", 1); return err },
		"Begin":           func() error { _, err := b.Begin(ctx); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
		}
	}
	if got, err := b.Get(context.Background(), "a"); err != nil || got.ID != "a" {
		t.Errorf("item changed by cancelled calls: %+v, %v", got, err)
	}
}

func TestClosed(t *testing.T) {
	b, err := sqlite.Open[note, string](tempDB(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	calls := map[string]func() error{
		"Get":    func() error { _, err := b.Get(ctx, "a"); return err },
		"GetAll": func() error { _, err := b.GetAll(ctx, store.Query[note]{}); return err },
		"Save":   func() error { _, err := b.Save(ctx, "a", note{}); return err },
		"Delete": func() error { _, err := b.Delete(ctx, "a"); return err },
		"Begin":  func() error { _, err := b.Begin(ctx); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

func TestCodecErrors(t *testing.T) {
	ctx := context.Background()
	type withFunc struct{ F func() }
	path := tempDB(t)
	fb := open[withFunc, string](t, path, sqlite.WithTable("funcs"))
	_, err := fb.Save(ctx, "f1", withFunc{F: func() {}})
	if err == nil || !strings.Contains(err.Error(), `"f1"`) {
		t.Errorf("Save of an unencodable item: %v, want an error naming the ID", err)
	}

	b := open[note, string](t, path)
	mustSave(t, b, "good", note{ID: "good"})
	mustSave(t, b, "bad", note{ID: "bad"})
	if _, err := rawDB(t, path).Exec(`UPDATE items SET data = '{"id": 12' WHERE id = 'bad'`); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "bad"); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Errorf("Get of a corrupt item: %v, want an error naming the ID", err)
	}
	if _, err := b.GetAll(ctx, store.Query[note]{}); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Errorf("GetAll over a corrupt item: %v, want an error naming the ID", err)
	}
	if _, err := b.GetAll(ctx, store.Query[note]{Limit: 1}); err != nil {
		t.Errorf("GetAll stopping before the corrupt item: %v", err)
	}
}

// TestDeletedVersions checks that versions are never handed out again to an
// ID, across deletes by this package or by plain SQL, and across reopening.
func TestDeletedVersions(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	b, err := sqlite.Open[note, string](path)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		mustSave(t, b, "a", note{ID: "a"}) // versions 1..5
	}
	mustSave(t, b, "b", note{ID: "b"}) // version 1
	if _, err := b.DeleteVersioned(ctx, "a", 5); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	b.Close()

	b = open[note, string](t, path)
	v, err := b.SaveVersioned(ctx, "b", note{ID: "b"}, store.VersionAbsent)
	if err != nil || v.Version != 6 {
		t.Fatalf("save after deleting versions 5 and 1 and reopening = %+v, %v; want version 6", v, err)
	}
	mustSave(t, b, "b", note{ID: "b"}) // 7
	if _, err := rawDB(t, path).Exec(`DELETE FROM items WHERE id = 'b'`); err != nil {
		t.Fatal(err)
	}
	if v := mustSave(t, b, "a", note{ID: "a"}); v.Version != 8 {
		t.Errorf("save after a plain SQL delete of version 7 = version %d, want 8", v.Version)
	}
	if _, err := b.SaveVersioned(ctx, "a", note{ID: "a"}, 5); !errors.Is(err, store.ErrConflict) {
		t.Errorf("write expecting the deleted incarnation's version 5: %v, want a conflict", err)
	}
}

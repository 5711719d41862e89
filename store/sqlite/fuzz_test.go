package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/sqlite"
)

// fuzzDoc is the item type of FuzzRowDecoding: JSON of every shape.
type fuzzDoc struct {
	Name string         `json:"name"`
	N    int            `json:"n"`
	F    float64        `json:"f,omitempty"`
	Tags []string       `json:"tags,omitempty"`
	M    map[string]int `json:"m,omitempty"`
	P    *fuzzDoc       `json:"p,omitempty"`
}

// FuzzRowDecoding writes arbitrary rows (any id, any data, any version)
// straight into the tables of a TEXT-keyed and an INTEGER-keyed Backend, as
// another program or a damaged file could, and reads them back with Get and
// GetAll. A row whose data is the JSON of a fuzzDoc must decode to what
// encoding/json decodes; any other row must fail with an error that says it
// could not decode and names the row's ID, never panic, never match
// ErrNotFound. It also checks the key encoding: a uint ID beyond int64 is
// refused with ErrInvalidArgument naming it, before any SQL runs.
func FuzzRowDecoding(f *testing.F) {
	path := filepath.Join(f.TempDir(), "fuzz.db")
	texts := open[fuzzDoc, string](f, path, sqlite.WithTable("texts"))
	ints := open[fuzzDoc, int64](f, path, sqlite.WithTable("ints"))
	uints := open[fuzzDoc, uint](f, path, sqlite.WithTable("uints"))
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })

	f.Add("doc-1", int64(1), uint64(1), `{"name":"x","n":1,"tags":["a"],"m":{"k":2},"p":{"name":"y"}}`, int64(1))
	f.Add("", int64(0), uint64(math.MaxUint64), `{"n":"one"}`, int64(-5))
	f.Add("a\n\"b\"", int64(math.MinInt64), uint64(math.MaxInt64), `{"name":`, int64(math.MaxInt64))

	f.Fuzz(func(t *testing.T, id string, intID int64, uintID uint64, data string, version int64) {
		ctx := context.Background()
		for _, r := range []struct {
			table string
			id    any
		}{{"texts", id}, {"ints", intID}} {
			if _, err := db.ExecContext(ctx, `DELETE FROM "`+r.table+`"`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, `INSERT INTO "`+r.table+`" (id, data, version, updated, seq) VALUES (?, ?, ?, 0, 1)`, r.id, data, version); err != nil {
				t.Fatal(err)
			}
		}
		var want fuzzDoc
		decodeErr := json.Unmarshal([]byte(data), &want)
		check := func(what, name string, got fuzzDoc, err error) {
			t.Helper()
			switch {
			case decodeErr == nil && err != nil:
				t.Errorf("%s of a row holding %q: %v", what, data, err)
			case decodeErr == nil && !reflect.DeepEqual(got, want):
				t.Errorf("%s of a row holding %q = %+v, want %+v", what, data, got, want)
			case decodeErr != nil && err == nil:
				t.Errorf("%s of a row holding %q (not a fuzzDoc: %v) returned %+v, no error", what, data, decodeErr, got)
			case decodeErr != nil && (errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "decode item "+name)):
				t.Errorf("%s of a row holding %q: the error %q does not say it could not decode item %s", what, data, err, name)
			}
		}

		v, err := texts.GetVersioned(ctx, id)
		check("Get", strconv.Quote(id), v.Item, err)
		vs, err := texts.GetAllVersioned(ctx, store.Query[fuzzDoc]{})
		if err == nil && len(vs) != 1 {
			t.Fatalf("GetAll of a table with one row returned %d items", len(vs))
		}
		var first fuzzDoc
		if err == nil {
			first = vs[0].Item
		}
		check("GetAll", strconv.Quote(id), first, err)

		v, err = ints.GetVersioned(ctx, intID)
		check("Get", strconv.FormatInt(intID, 10), v.Item, err)
		items, err := ints.GetAll(ctx, store.Query[fuzzDoc]{Limit: 1})
		first = fuzzDoc{}
		if err == nil && len(items) == 1 {
			first = items[0]
		}
		check("GetAll", strconv.FormatInt(intID, 10), first, err)

		// Key encoding: a uint beyond int64 fits no INTEGER key.
		_, err = uints.Get(ctx, uint(uintID))
		name := strconv.FormatUint(uintID, 10)
		switch {
		case uint64(uint(uintID)) != uintID: // 32-bit platforms
		case uintID > math.MaxInt64 && (!errors.Is(err, store.ErrInvalidArgument) || !strings.Contains(err.Error(), name)):
			t.Errorf("Get(%d) on an INTEGER key: %v, want ErrInvalidArgument naming the ID", uintID, err)
		case uintID <= math.MaxInt64 && !errors.Is(err, store.ErrNotFound):
			t.Errorf("Get(%d) of an absent ID: %v, want ErrNotFound", uintID, err)
		}
	})
}

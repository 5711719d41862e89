package storetest

import (
	"errors"
	"sync"
	"testing"

	"github.com/nexusstore/nexus/store"
)

// versionedBackend is the versioned backend type the suite runs against.
type versionedBackend = store.VersionedBackend[Item, string]

// runVersioned checks the store.VersionedBackend contract, or skips when
// the backend does not implement it.
func runVersioned(t *testing.T, newBackend func(t *testing.T) backend) {
	require[versionedBackend](t, newBackend, "store.VersionedBackend")
	runSubtests(t, newBackend, []subtest[versionedBackend]{
		{"Versions", testVersions},
		{"GetVersionedAbsent", testGetVersionedAbsent},
		{"GetAllVersioned", testGetAllVersioned},
		{"ConcurrentIncrements", testConcurrentIncrements},
	})
	t.Run("SaveVersioned", func(t *testing.T) {
		for _, c := range conditionalCases {
			t.Run(c.name, func(t *testing.T) { testSaveVersioned(t, newBackend(t).(versionedBackend), c) })
		}
	})
	t.Run("DeleteVersioned", func(t *testing.T) {
		for _, c := range conditionalCases {
			t.Run(c.name, func(t *testing.T) { testDeleteVersioned(t, newBackend(t).(versionedBackend), c) })
		}
	})
}

func mustGetVersioned(t *testing.T, b versionedBackend, id string) store.Versioned[Item] {
	t.Helper()
	v, err := b.GetVersioned(t.Context(), id)
	if err != nil {
		t.Fatalf("GetVersioned(%q): %v", id, err)
	}
	return v
}

func mustSaveVersioned(t *testing.T, b versionedBackend, it Item, expect uint64) store.Versioned[Item] {
	t.Helper()
	v, err := b.SaveVersioned(t.Context(), it.ID, it, expect)
	if err != nil {
		t.Fatalf("SaveVersioned(%q, expect %d): %v", it.ID, expect, err)
	}
	return v
}

func testVersions(t *testing.T, b versionedBackend) {
	it := sample("a")
	v1 := mustSaveVersioned(t, b, it, store.VersionAny)
	if v1.Version < 1 || v1.Version == store.VersionAny {
		t.Fatalf("first SaveVersioned returned version %d; want at least 1 and not VersionAny", v1.Version)
	}
	if v1.Updated.IsZero() {
		t.Fatal("SaveVersioned returned a zero Updated time")
	}
	if !equal(v1.Item, it) {
		t.Fatalf("SaveVersioned returned %+v; want %+v", v1.Item, it)
	}
	if got := mustGetVersioned(t, b, "a"); got.Version != v1.Version || !equal(got.Item, it) {
		t.Fatalf("GetVersioned = %+v version %d; want %+v version %d", got.Item, got.Version, it, v1.Version)
	}

	// A plain Save is a save too: it must move the version on.
	it.Count = 2
	mustSave(t, b, it)
	v2 := mustGetVersioned(t, b, "a")
	if v2.Version <= v1.Version {
		t.Fatalf("version after Save = %d; want more than %d", v2.Version, v1.Version)
	}
	if v2.Updated.IsZero() {
		t.Fatal("GetVersioned returned a zero Updated time")
	}

	it.Count = 3
	v3 := mustSaveVersioned(t, b, it, v2.Version)
	if v3.Version <= v2.Version {
		t.Fatalf("version after SaveVersioned = %d; want more than %d", v3.Version, v2.Version)
	}

	// An item deleted and saved again must not get back an old version, or
	// a write based on the old item would overwrite the new one (ABA).
	if _, err := b.Delete(t.Context(), "a"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	v4 := mustSaveVersioned(t, b, it, store.VersionAbsent)
	if v4.Version <= v3.Version {
		t.Fatalf("version after deleting and saving again = %d; want more than the deleted item's %d", v4.Version, v3.Version)
	}
}

func testGetVersionedAbsent(t *testing.T, b versionedBackend) {
	if v, err := b.GetVersioned(t.Context(), "absent"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetVersioned of an absent item = %+v, %v; want an error matching store.ErrNotFound", v, err)
	}
}

func testGetAllVersioned(t *testing.T, b versionedBackend) {
	for i, id := range []string{"c", "a", "b", "d"} {
		mustSave(t, b, Item{ID: id, Count: i})
	}
	mustSave(t, b, Item{ID: "a", Name: "saved again", Count: 1})
	queries := []store.Query[Item]{
		{},
		{Filter: func(it Item) bool { return it.Count >= 1 }, Limit: 2},
	}
	for _, q := range queries {
		items := mustGetAll(t, b, q)
		vs, err := b.GetAllVersioned(t.Context(), q)
		if err != nil {
			t.Fatalf("GetAllVersioned: %v", err)
		}
		got := make([]Item, len(vs))
		for i, v := range vs {
			got[i] = v.Item
			if want := mustGetVersioned(t, b, v.Item.ID); v.Version != want.Version {
				t.Errorf("GetAllVersioned gave %q version %d; GetVersioned gives %d", v.Item.ID, v.Version, want.Version)
			}
		}
		wantItems(t, "GetAllVersioned items (compared with GetAll)", got, items...)
	}
}

// testConcurrentIncrements has several goroutines increment one counter
// with read-modify-conditional-write loops: no increment may be lost.
func testConcurrentIncrements(t *testing.T, b versionedBackend) {
	const workers, perWorker = 8, 25
	ctx := t.Context()
	mustSaveVersioned(t, b, Item{ID: "counter"}, store.VersionAbsent)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range perWorker {
				for {
					v, err := b.GetVersioned(ctx, "counter")
					if err != nil {
						t.Errorf("GetVersioned: %v", err)
						return
					}
					v.Item.Count++
					_, err = b.SaveVersioned(ctx, "counter", v.Item, v.Version)
					if err == nil {
						break
					}
					if !errors.Is(err, store.ErrConflict) {
						t.Errorf("SaveVersioned: %v", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if got := mustGetVersioned(t, b, "counter").Item.Count; !t.Failed() && got != workers*perWorker {
		t.Fatalf("counter = %d after %d conditional increments; want %[2]d (a conditional write was not atomic)", got, workers*perWorker)
	}
}

// itemState is the state a conditional-write case starts from.
type itemState uint8

const (
	stateNever   itemState = iota // never saved
	statePresent                  // saved twice: a current and a stale version
	stateDeleted                  // saved then deleted: a stale version
)

// outcome is what a conditional write should do.
type outcome uint8

const (
	outcomeWrite           outcome = iota // the write happens
	outcomeNoop                           // a delete of an absent item: false, no error
	outcomeConflict                       // a *ConflictError with the stored value
	outcomeConflictDeleted                // a *ConflictError with RemoteDeleted
)

// conditionalCase is a case of SaveVersioned and DeleteVersioned: the
// outcome is the same for both, except that a delete of an absent item that
// a save would write is a no-op.
type conditionalCase struct {
	name   string
	state  itemState
	expect func(current, stale uint64) uint64 // the version the write expects
	want   outcome
}

var conditionalCases = []conditionalCase{
	{"Present/Current", statePresent, func(c, _ uint64) uint64 { return c }, outcomeWrite},
	{"Present/Stale", statePresent, func(_, s uint64) uint64 { return s }, outcomeConflict},
	{"Present/VersionAbsent", statePresent, func(_, _ uint64) uint64 { return store.VersionAbsent }, outcomeConflict},
	{"Present/VersionAny", statePresent, func(_, _ uint64) uint64 { return store.VersionAny }, outcomeWrite},
	{"Deleted/Stale", stateDeleted, func(_, s uint64) uint64 { return s }, outcomeConflictDeleted},
	{"Deleted/VersionAbsent", stateDeleted, func(_, _ uint64) uint64 { return store.VersionAbsent }, outcomeWrite},
	{"Deleted/VersionAny", stateDeleted, func(_, _ uint64) uint64 { return store.VersionAny }, outcomeWrite},
	{"Never/Version1", stateNever, func(_, _ uint64) uint64 { return 1 }, outcomeConflictDeleted},
	{"Never/VersionAbsent", stateNever, func(_, _ uint64) uint64 { return store.VersionAbsent }, outcomeWrite},
	{"Never/VersionAny", stateNever, func(_, _ uint64) uint64 { return store.VersionAny }, outcomeWrite},
}

// remoteItem is the value a present item holds when a case starts.
var remoteItem = Item{ID: "a", Name: "remote", Count: 2, Tags: []string{"remote"}}

// setUp brings item "a" to state and returns its current version (0 unless
// present) and a stale one (0 when never saved).
func setUp(t *testing.T, b versionedBackend, state itemState) (current, stale uint64) {
	t.Helper()
	if state == stateNever {
		return 0, 0
	}
	first := mustSaveVersioned(t, b, Item{ID: "a", Name: "first"}, store.VersionAbsent)
	if state == stateDeleted {
		if existed, err := b.DeleteVersioned(t.Context(), "a", first.Version); err != nil || !existed {
			t.Fatalf("DeleteVersioned with the current version = %v, %v; want true, nil", existed, err)
		}
		return 0, first.Version
	}
	second := mustSaveVersioned(t, b, remoteItem, first.Version)
	return second.Version, first.Version
}

// checkConflict checks err against the conflict a case wants, and that the
// item is unchanged.
func checkConflict(t *testing.T, b versionedBackend, err error, want outcome, expect, current uint64) {
	t.Helper()
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("err = %v; want an error matching store.ErrConflict", err)
	}
	ce, ok := errors.AsType[*store.ConflictError[Item]](err)
	if !ok {
		t.Fatalf("err = %v (%T); want a *store.ConflictError[storetest.Item]", err, err)
	}
	if ce.Expected != expect {
		t.Errorf("ConflictError.Expected = %d; want %d", ce.Expected, expect)
	}
	if want == outcomeConflictDeleted {
		if !ce.RemoteDeleted {
			t.Errorf("ConflictError.RemoteDeleted = false; want true (there is no stored item)")
		}
		wantNotFound(t, b, "a")
		return
	}
	if ce.RemoteDeleted {
		t.Errorf("ConflictError.RemoteDeleted = true; want false (the item is stored)")
	}
	if ce.Remote.Version != current || !equal(ce.Remote.Item, remoteItem) {
		t.Errorf("ConflictError.Remote = %+v version %d; want %+v version %d", ce.Remote.Item, ce.Remote.Version, remoteItem, current)
	}
	if ce.Remote.Updated.IsZero() {
		t.Errorf("ConflictError.Remote.Updated is zero; want the stored item's")
	}
	if got := mustGetVersioned(t, b, "a"); got.Version != current || !equal(got.Item, remoteItem) {
		t.Errorf("after the conflict, GetVersioned = %+v version %d; want it unchanged: %+v version %d", got.Item, got.Version, remoteItem, current)
	}
}

func testSaveVersioned(t *testing.T, b versionedBackend, c conditionalCase) {
	current, stale := setUp(t, b, c.state)
	expect := c.expect(current, stale)
	local := Item{ID: "a", Name: "local", Count: 3, Tags: []string{"local"}}
	v, err := b.SaveVersioned(t.Context(), "a", local, expect)
	if c.want != outcomeWrite {
		checkConflict(t, b, err, c.want, expect, current)
		return
	}
	if err != nil {
		t.Fatalf("SaveVersioned(expect %d): %v; want success", expect, err)
	}
	if v.Version <= max(current, stale) || !equal(v.Item, local) {
		t.Fatalf("SaveVersioned returned %+v version %d; want %+v with a version above %d", v.Item, v.Version, local, max(current, stale))
	}
	if got := mustGetVersioned(t, b, "a"); got.Version != v.Version || !equal(got.Item, local) {
		t.Fatalf("GetVersioned = %+v version %d; want %+v version %d", got.Item, got.Version, local, v.Version)
	}
}

func testDeleteVersioned(t *testing.T, b versionedBackend, c conditionalCase) {
	current, stale := setUp(t, b, c.state)
	expect := c.expect(current, stale)
	want := c.want
	if want == outcomeWrite && c.state != statePresent {
		want = outcomeNoop
	}
	existed, err := b.DeleteVersioned(t.Context(), "a", expect)
	switch want {
	case outcomeWrite, outcomeNoop:
		if err != nil || existed != (want == outcomeWrite) {
			t.Fatalf("DeleteVersioned(expect %d) = %v, %v; want %v, nil", expect, existed, err, want == outcomeWrite)
		}
		wantNotFound(t, b, "a")
	default:
		if existed {
			t.Errorf("DeleteVersioned reported true with a conflict")
		}
		checkConflict(t, b, err, want, expect, current)
	}
}

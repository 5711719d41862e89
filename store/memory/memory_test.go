package memory_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
	"github.com/nexusstore/nexus/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend[storetest.Item, string] {
		return memory.New[storetest.Item, string](memory.WithClone(storetest.Item.Clone))
	})
}

func TestNotTxBackend(t *testing.T) {
	// The store's compensating-write path is tested through this backend.
	var b any = memory.New[int, string]()
	if _, ok := b.(store.TxBackend[int, string]); ok {
		t.Fatal("*memory.Backend implements store.TxBackend; it must not")
	}
}

type userID string

type key struct {
	Tenant string
	N      int
}

func TestNotFoundNamesID(t *testing.T) {
	tests := []struct {
		name string
		get  func() error
		want string
	}{
		{"string", func() error { _, err := memory.New[int, string]().Get(t.Context(), "u1"); return err }, `store: not found: id "u1"`},
		{"named string", func() error { _, err := memory.New[int, userID]().Get(t.Context(), "u2"); return err }, `store: not found: id "u2"`},
		{"int", func() error { _, err := memory.New[int, int]().Get(t.Context(), 42); return err }, `store: not found: id 42`},
		{"uint", func() error { _, err := memory.New[int, uint64]().Get(t.Context(), 42); return err }, `store: not found: id 42`},
		{"struct", func() error { _, err := memory.New[int, key]().Get(t.Context(), key{"t", 7}); return err }, `store: not found: id {t 7}`},
		{"versioned", func() error { _, err := memory.New[int, string]().GetVersioned(t.Context(), "u3"); return err }, `store: not found: id "u3"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.get()
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("err = %v; want store.ErrNotFound", err)
			}
			if err.Error() != tt.want {
				t.Fatalf("err = %q; want %q", err, tt.want)
			}
		})
	}
}

// TestOrderMatchesModel runs random saves and deletes against a slice that
// models first-save order, across many compactions.
func TestOrderMatchesModel(t *testing.T) {
	ctx := t.Context()
	b := memory.New[int, int]()
	var model []int // IDs in first-save order; the item is its ID times ten
	r := rand.New(rand.NewPCG(1, 2))
	for step := range 3000 {
		id := r.IntN(40)
		i := slices.Index(model, id)
		if r.IntN(2) == 0 {
			if _, err := b.Save(ctx, id, id*10); err != nil {
				t.Fatal(err)
			}
			if i < 0 {
				model = append(model, id)
			}
		} else {
			existed, err := b.Delete(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if existed != (i >= 0) {
				t.Fatalf("step %d: Delete(%d) = %v; want %v", step, id, existed, i >= 0)
			}
			if i >= 0 {
				model = slices.Delete(model, i, i+1)
			}
		}
		got, err := b.GetAll(ctx, store.Query[int]{})
		if err != nil {
			t.Fatal(err)
		}
		want := make([]int, len(model))
		for j, id := range model {
			want[j] = id * 10
		}
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: GetAll = %v; want %v", step, got, want)
		}
		if b.Len() != len(model) {
			t.Fatalf("step %d: Len = %d; want %d", step, b.Len(), len(model))
		}
	}
}

func TestGetAllQuery(t *testing.T) {
	ctx := t.Context()
	b := memory.New[int, int]()
	for i := range 10 {
		if _, err := b.Save(ctx, i, i); err != nil {
			t.Fatal(err)
		}
	}
	odd := func(n int) bool { return n%2 == 1 }
	tests := []struct {
		name string
		q    store.Query[int]
		want []int
	}{
		{"all", store.Query[int]{}, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"limit", store.Query[int]{Limit: 3}, []int{0, 1, 2}},
		{"negative limit is none", store.Query[int]{Limit: -1}, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"filter", store.Query[int]{Filter: odd}, []int{1, 3, 5, 7, 9}},
		{"filter then limit", store.Query[int]{Filter: odd, Limit: 2}, []int{1, 3}},
		{"limit above matches", store.Query[int]{Filter: odd, Limit: 9}, []int{1, 3, 5, 7, 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := b.GetAll(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("GetAll = %v; want %v", got, tt.want)
			}
			vs, err := b.GetAllVersioned(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(vs) != len(tt.want) {
				t.Fatalf("GetAllVersioned returned %d items; want %d", len(vs), len(tt.want))
			}
		})
	}
}

func TestFilterMayCallBackend(t *testing.T) {
	// The filter runs without the lock held: calling back must not deadlock.
	ctx := t.Context()
	b := memory.New[int, int]()
	for i := range 3 {
		if _, err := b.Save(ctx, i, i); err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.GetAll(ctx, store.Query[int]{Filter: func(n int) bool {
		_, err := b.Save(ctx, n+100, n)
		return err == nil && n > 0
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("GetAll = %v; want [1 2]", got)
	}
}

func TestVersionsComeFromOneCounter(t *testing.T) {
	ctx := t.Context()
	b := memory.New[string, string]()
	var last uint64
	for i, id := range []string{"a", "b", "a", "c", "b"} {
		v, err := b.SaveVersioned(ctx, id, id, store.VersionAny)
		if err != nil {
			t.Fatal(err)
		}
		if want := uint64(i + 1); v.Version != want {
			t.Fatalf("save %d: version %d; want %d", i, v.Version, want)
		}
		if v.Updated.IsZero() {
			t.Fatalf("save %d: zero Updated", i)
		}
		last = v.Version
	}
	if _, err := b.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	v, err := b.SaveVersioned(ctx, "a", "a", store.VersionAbsent)
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != last+1 {
		t.Fatalf("version after delete and save = %d; want %d", v.Version, last+1)
	}
}

func TestConflictMessages(t *testing.T) {
	ctx := t.Context()
	b := memory.New[string, string]()
	if _, err := b.Save(ctx, "a", "x"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"stale save", func() error { _, err := b.SaveVersioned(ctx, "a", "y", 7); return err },
			"store: conflict: expected version 7, found version 1"},
		{"save expecting absent", func() error { _, err := b.SaveVersioned(ctx, "a", "y", store.VersionAbsent); return err },
			"store: conflict: expected no item, found version 1"},
		{"save of a deleted item", func() error { _, err := b.SaveVersioned(ctx, "gone", "y", 3); return err },
			"store: conflict: expected version 3, found no item"},
		{"stale delete", func() error { _, err := b.DeleteVersioned(ctx, "a", 2); return err },
			"store: conflict: expected version 2, found version 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, store.ErrConflict) || err.Error() != tt.want {
				t.Fatalf("err = %v; want %q matching store.ErrConflict", err, tt.want)
			}
		})
	}
}

func TestClone(t *testing.T) {
	ctx := t.Context()
	var clones int
	b := memory.New[[]int, string](memory.WithClone(func(s []int) []int {
		clones++
		return slices.Clone(s)
	}))
	in := []int{1, 2}
	out, err := b.Save(ctx, "a", in)
	if err != nil {
		t.Fatal(err)
	}
	in[0], out[1] = 9, 9
	got, err := b.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("Get = %v; want [1 2]", got)
	}
	if clones != 3 { // in on Save, out of Save, out of Get
		t.Fatalf("clone called %d times; want 3", clones)
	}
}

func TestWithoutCloneSharesMemory(t *testing.T) {
	// Documented: without WithClone, items are copied as Go copies values.
	ctx := t.Context()
	b := memory.New[[]int, string]()
	in := []int{1, 2}
	if _, err := b.Save(ctx, "a", in); err != nil {
		t.Fatal(err)
	}
	in[0] = 9
	got, err := b.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != 9 {
		t.Fatalf("Get = %v; want the caller's slice, [9 2]", got)
	}
}

func TestWithCloneNilTurnsCloningOff(t *testing.T) {
	b := memory.New[[]int, string](memory.WithClone(slices.Clone[[]int]), memory.WithClone[[]int](nil))
	in := []int{1}
	if _, err := b.Save(t.Context(), "a", in); err != nil {
		t.Fatal(err)
	}
	in[0] = 2
	if got, _ := b.Get(t.Context(), "a"); got[0] != 2 {
		t.Fatalf("Get = %v; want [2]: the nil clone should have turned cloning off", got)
	}
}

func TestLenAndCallsUnderConcurrency(t *testing.T) {
	ctx := t.Context()
	b := memory.New[int, string]()
	const workers, perWorker = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				id := fmt.Sprint(w, "-", i)
				_, _ = b.Save(ctx, id, i)
				_, _ = b.Get(ctx, id)
				_, _ = b.GetVersioned(ctx, id)
				if i%2 == 0 {
					_, _ = b.DeleteVersioned(ctx, id, store.VersionAny)
				}
				_, _ = b.GetAll(ctx, store.Query[int]{Limit: 1})
				_ = b.Len()
			}
		})
	}
	wg.Wait()
	const n = workers * perWorker
	if got := b.Len(); got != n/2 {
		t.Errorf("Len = %d; want %d", got, n/2)
	}
	want := map[memory.Op]uint64{memory.OpGet: 2 * n, memory.OpGetAll: n, memory.OpSave: n, memory.OpDelete: n / 2}
	for op, w := range want {
		if got := b.Calls(op); got != w {
			t.Errorf("Calls(%v) = %d; want %d", op, got, w)
		}
	}
}

func TestOpString(t *testing.T) {
	tests := []struct {
		op   memory.Op
		want string
	}{
		{memory.OpGet, "get"},
		{memory.OpGetAll, "get_all"},
		{memory.OpSave, "save"},
		{memory.OpDelete, "delete"},
		{memory.Op(200), "Op(200)"},
	}
	for _, tt := range tests {
		if got := tt.op.String(); got != tt.want {
			t.Errorf("Op(%d).String() = %q; want %q", uint8(tt.op), got, tt.want)
		}
	}
	if got := memory.New[int, int]().Calls(memory.Op(200)); got != 0 {
		t.Errorf("Calls(Op(200)) = %d; want 0", got)
	}
}

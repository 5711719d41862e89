package store_test

// The sequential specification the linearizability checker holds the store
// to, per ID (porcupine checks each ID's partition on its own): the
// consistency model of docs/store.md.
//
// The state of an ID is its logical value: what this store's reads must
// return. With one store and no other writer of the backend, that is the
// latest write that took effect, the store's own unsynced write-behind
// changes included. A write that succeeded takes effect at one point
// within its [call, return] window (linearizable reads). Failed writes:
//
//   - A failed write whose value may have been seen (an optimistic
//     cache-and-network write rolled back, a transaction undone by
//     compensating writes) is Begin and End: visible while in flight, never
//     after it returned.
//   - A failed write that may or may not have taken effect (a transaction
//     whose undo failed, a DeleteAll that stopped at an unknown item) ends
//     with its value among the possible logical values: later reads decide.
//   - A failed network-first write changed nothing (faults are raised before
//     the backend applies anything): it is only a note.
//
// A read may return the logical value (any of the possible ones, and then
// only that one is possible from there on), a value visible in flight, or,
// for a cache-only read, not-found.
//
// With atomicWrites false, the model is weaker for the writes that touch the
// backend: within its window such a write may show its value early and the
// value it replaced late (a cache read and a network read may disagree
// while it is in flight). It is then Commit (it takes effect; the replaced
// value stays visible) and End (it returned: only its effect stays).

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

// atomicWrites selects the model of a successful write that touches the
// backend: one atomic step (linearizable reads, as docs/store.md promises),
// or Commit and End (see above).
const atomicWrites = true

// linKind is the kind of one step of the model.
type linKind uint8

const (
	linRead   linKind = iota // a read that returned out (0: not found)
	linWrite                 // an atomic write of tok (0: a delete)
	linBegin                 // a failed write: its value is visible from here
	linCommit                // a windowed write takes effect; the value it replaced stays visible
	linEnd                   // a failed or windowed write returned (see endMode)
	linNote                  // no effect on the value: an invalidation, a Sync, a failed write that changed nothing
)

// endMode says how a failed or windowed write ended.
type endMode uint8

const (
	endOK     endMode = iota // it succeeded: a Commit came before
	endFailed                // it failed and its effect was undone: no Commit
	endMaybe                 // it failed and may have taken effect
)

// linIn is the input of one step.
type linIn struct {
	kind linKind
	id   string
	tok  int64 // written (linWrite, linBegin...): 0 for a delete
	wid  int32 // links a Begin, Commit and End
	miss bool  // a read that may miss the cache: not-found is legal
	end  endMode
	what string // the call, for the visualization
}

// linOut is the output of a read.
type linOut struct{ tok int64 }

// linState is the state of one ID. Never modified in place: Step returns a
// new one.
type linState struct {
	vals []int64     // possible logical values, sorted; 0: absent
	open []openWrite // non-atomic writes between Begin and End
	olds []oldValue  // values replaced by an open write's Commit
}

type openWrite struct {
	wid       int32
	tok       int64
	committed bool
}

type oldValue struct {
	wid int32
	tok int64
}

func (s linState) visibleInFlight(tok int64) bool {
	for _, w := range s.open {
		if w.tok == tok {
			return true
		}
	}
	for _, o := range s.olds {
		if o.tok == tok {
			return true
		}
	}
	return false
}

func (s linState) openIndex(wid int32) int {
	return slices.IndexFunc(s.open, func(w openWrite) bool { return w.wid == wid })
}

func linStep(st, input, output any) (bool, any) {
	s := st.(linState)
	in := input.(linIn)
	switch in.kind {
	case linNote:
		return true, s
	case linRead:
		tok := output.(linOut).tok
		if s.visibleInFlight(tok) || (in.miss && tok == 0) {
			return true, s
		}
		if !slices.Contains(s.vals, tok) {
			return false, s
		}
		if len(s.vals) > 1 {
			s.vals = []int64{tok} // the read decided which one it is
		}
		return true, s
	case linWrite:
		s.vals = []int64{in.tok}
		return true, s
	case linBegin:
		if s.openIndex(in.wid) >= 0 {
			return false, s
		}
		s.open = append(slices.Clone(s.open), openWrite{wid: in.wid, tok: in.tok})
		return true, s
	case linCommit:
		if s.openIndex(in.wid) >= 0 {
			return false, s
		}
		s.open = append(slices.Clone(s.open), openWrite{wid: in.wid, tok: in.tok, committed: true})
		olds := slices.Clone(s.olds)
		for _, v := range s.vals {
			olds = append(olds, oldValue{in.wid, v})
		}
		s.olds = olds
		s.vals = []int64{in.tok}
		return true, s
	case linEnd:
		i := s.openIndex(in.wid)
		if i < 0 || (in.end == endOK) != s.open[i].committed {
			return false, s
		}
		if in.end == endMaybe && !slices.Contains(s.vals, in.tok) {
			vals := append(slices.Clone(s.vals), in.tok)
			slices.Sort(vals)
			s.vals = vals
		}
		s.open = slices.Delete(slices.Clone(s.open), i, i+1)
		s.olds = slices.DeleteFunc(slices.Clone(s.olds), func(o oldValue) bool { return o.wid == in.wid })
		return true, s
	}
	panic(fmt.Sprintf("linearizability model: unknown step kind %d", in.kind))
}

func linEqual(a, b any) bool {
	x, y := a.(linState), b.(linState)
	return slices.Equal(x.vals, y.vals) && sameSet(x.open, y.open) && sameSet(x.olds, y.olds)
}

// sameSet compares two small slices as multisets (open writes and old values
// are appended in the order steps were taken, which does not matter).
func sameSet[E comparable](a, b []E) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if count(a, x) != count(b, x) {
			return false
		}
	}
	return true
}

func count[E comparable](xs []E, x E) int {
	n := 0
	for _, y := range xs {
		if x == y {
			n++
		}
	}
	return n
}

func linHash(st any) uint64 {
	s := st.(linState)
	h := fnv.New64a()
	for _, v := range s.vals {
		fmt.Fprint(h, v, ",")
	}
	// Order-independent over the open writes and old values.
	var x uint64
	for _, w := range s.open {
		c := uint64(0)
		if w.committed {
			c = 7
		}
		x ^= uint64(w.wid)*0x9E3779B97F4A7C15 ^ uint64(w.tok)<<1 ^ c
	}
	for _, o := range s.olds {
		x ^= (uint64(o.wid)*0xC2B2AE3D27D4EB4F ^ uint64(o.tok)) << 3
	}
	return h.Sum64() ^ x
}

func describeLinOp(input, output any) string {
	in := input.(linIn)
	switch in.kind {
	case linRead:
		s := fmt.Sprintf("%s(%s) → %s", in.what, in.id, describeTok(output.(linOut).tok))
		if in.miss {
			s += " (may miss)"
		}
		return s
	case linWrite:
		return fmt.Sprintf("%s(%s) = %s", in.what, in.id, describeTok(in.tok))
	case linBegin:
		return fmt.Sprintf("%s(%s) = %s: visible from here [w%d]", in.what, in.id, describeTok(in.tok), in.wid)
	case linCommit:
		return fmt.Sprintf("%s(%s) = %s: takes effect, the old value still visible [w%d]", in.what, in.id, describeTok(in.tok), in.wid)
	case linEnd:
		how := map[endMode]string{endOK: "returned ok", endFailed: "failed, undone", endMaybe: "failed, may have taken effect"}[in.end]
		return fmt.Sprintf("%s(%s) = %s: %s [w%d]", in.what, in.id, describeTok(in.tok), how, in.wid)
	}
	return fmt.Sprintf("%s (%s)", in.what, in.id)
}

func describeLinState(st any) string {
	s := st.(linState)
	vals := make([]string, len(s.vals))
	for i, v := range s.vals {
		vals[i] = describeTok(v)
	}
	out := strings.Join(vals, " or ")
	if len(s.open) > 0 {
		ws := make([]string, 0, len(s.open))
		for _, w := range slices.SortedFunc(slices.Values(s.open), func(a, b openWrite) int { return cmp.Compare(a.wid, b.wid) }) {
			d := fmt.Sprintf("w%d %s", w.wid, describeTok(w.tok))
			for _, o := range s.olds {
				if o.wid == w.wid {
					d += " (was " + describeTok(o.tok) + ")"
				}
			}
			ws = append(ws, d)
		}
		out += "; in flight: " + strings.Join(ws, ", ")
	}
	return out
}

// linModel is the per-ID model, partitioned by ID.
var linModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byID := map[string][]porcupine.Operation{}
		var ids []string
		for _, op := range history {
			id := op.Input.(linIn).id
			if _, ok := byID[id]; !ok {
				ids = append(ids, id)
			}
			byID[id] = append(byID[id], op)
		}
		slices.Sort(ids)
		out := make([][]porcupine.Operation, 0, len(ids))
		for _, id := range ids {
			out = append(out, byID[id])
		}
		return out
	},
	Init:              func() any { return linState{vals: []int64{0}} },
	Step:              linStep,
	Equal:             linEqual,
	Hash:              linHash,
	DescribeOperation: describeLinOp,
	DescribeState:     describeLinState,
}

// TestLinearizabilityModel checks the model on small hand-written histories:
// what it must accept, and the stale reads it must reject.
func TestLinearizabilityModel(t *testing.T) {
	type step struct {
		call, ret int64
		in        linIn
		out       int64
	}
	w := func(call, ret, tok int64) step { return step{call, ret, linIn{kind: linWrite, tok: tok}, 0} }
	r := func(call, ret, tok int64) step { return step{call, ret, linIn{kind: linRead}, tok} }
	miss := func(call, ret, tok int64) step { return step{call, ret, linIn{kind: linRead, miss: true}, tok} }
	begin := func(call, ret, tok int64, wid int32) step {
		return step{call, ret, linIn{kind: linBegin, tok: tok, wid: wid}, 0}
	}
	commit := func(call, ret, tok int64, wid int32) step {
		return step{call, ret, linIn{kind: linCommit, tok: tok, wid: wid}, 0}
	}
	end := func(call, ret, tok int64, wid int32, m endMode) step {
		return step{call, ret, linIn{kind: linEnd, tok: tok, wid: wid, end: m}, 0}
	}
	tests := []struct {
		name  string
		steps []step
		ok    bool
	}{
		{"read after write", []step{w(0, 1, 1), r(2, 3, 1)}, true},
		{"stale read after write returned", []step{w(0, 1, 1), w(2, 3, 2), r(4, 5, 1)}, false},
		{"read of a value never written", []step{w(0, 1, 1), r(2, 3, 7)}, false},
		{"absent at first", []step{r(0, 1, 0)}, true},
		{"concurrent write, either value", []step{w(0, 1, 1), w(2, 6, 2), r(3, 4, 1), r(3, 4, 2)}, true},
		{"no going back once the new value was read", []step{w(0, 1, 1), w(2, 9, 2), r(3, 4, 2), r(5, 6, 1)}, false},
		{"two failed writes in flight", []step{w(0, 1, 1), begin(2, 9, 2, 1), end(2, 9, 2, 1, endFailed), begin(2, 9, 3, 2), end(2, 9, 3, 2, endFailed), r(3, 4, 3), r(5, 6, 2), r(7, 8, 1)}, true},
		{"cache-only read may miss", []step{w(0, 1, 1), miss(2, 3, 0)}, true},
		{"a miss is no stale value", []step{w(0, 1, 1), w(2, 3, 2), miss(4, 5, 1)}, false},
		{"other reads may not miss", []step{w(0, 1, 1), r(2, 3, 0)}, false},
		{"failed write visible in flight", []step{w(0, 1, 1), begin(2, 9, 2, 1), end(2, 9, 2, 1, endFailed), r(3, 4, 2), r(5, 6, 1)}, true},
		{"failed write invisible after it returned", []step{w(0, 1, 1), begin(2, 3, 2, 1), end(2, 3, 2, 1, endFailed), r(4, 5, 2)}, false},
		// Windowed writes (atomicWrites false).
		{"network write: old value visible in flight", []step{w(0, 1, 1), commit(2, 9, 2, 1), end(2, 9, 2, 1, endOK), r(3, 4, 2), r(5, 6, 1)}, true},
		{"network write: old value gone after it returned", []step{w(0, 1, 1), commit(2, 3, 2, 1), end(2, 3, 2, 1, endOK), r(4, 5, 1)}, false},
		{"network write: new value after it returned", []step{w(0, 1, 1), commit(2, 3, 2, 1), end(2, 3, 2, 1, endOK), r(4, 5, 2)}, true},
		{"maybe: either value after", []step{w(0, 1, 1), begin(2, 3, 2, 1), end(2, 3, 2, 1, endMaybe), r(4, 5, 1)}, true},
		{"maybe: the first read decides", []step{w(0, 1, 1), begin(2, 3, 2, 1), end(2, 3, 2, 1, endMaybe), r(4, 5, 2), r(6, 7, 1)}, false},
		{"maybe: a later write wins", []step{w(0, 1, 1), begin(2, 3, 2, 1), end(2, 3, 2, 1, endMaybe), w(4, 5, 3), r(6, 7, 2)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ops []porcupine.Operation
			for i, s := range tt.steps {
				s.in.id = "k"
				ops = append(ops, porcupine.Operation{ClientId: i, Input: s.in, Call: s.call, Output: linOut{s.out}, Return: s.ret})
			}
			if got := porcupine.CheckOperations(linModel, ops); got != tt.ok {
				t.Errorf("linearizable = %v, want %v", got, tt.ok)
			}
		})
	}
}

package lincheck

// The sequential specification the linearizability checkers hold the store
// to, per ID (porcupine checks each ID's partition on its own): the
// consistency model of docs/store.md.
//
// The state of an ID is its logical value: what reads must return. With one
// store and no other writer of the backend, that is the latest write that
// took effect, the store's own unsynced write-behind changes included. A
// write that succeeded takes effect at one point within its [call, return]
// window (linearizable reads). Failed writes:
//
//   - A failed write whose value may have been seen (an optimistic
//     cache-and-network write rolled back, a transaction undone by
//     compensating writes) is Begin and End: visible while in flight, never
//     after it returned.
//   - A failed write that may or may not have taken effect (a transaction
//     whose undo failed, a DeleteAll that stopped at an unknown item) ends
//     with its value among the possible logical values: later reads decide.
//   - A failed network-first write changed nothing (faults are raised before
//     the backend applies anything): it is only a Note.
//
// A successful optimistic write seen from other stores (the replica
// checker) is Begin, Take and End: its value is visible from its call (the
// writing store shows it at once), it takes effect at one point (the
// backend's commit: reads through the backend see the old value before it
// and the new one after it), and it returns.
//
// A read may return the logical value (any of the possible ones, and then
// only that one is possible from there on), a value visible in flight, or,
// for a read that may miss the cache (Input.Miss), not-found.
//
// The windowed model (Commit then End) is weaker for the writes that touch
// the backend: within its window such a write may show its value early and
// the value it replaced late (a cache read and a network read may disagree
// while it is in flight). Commit takes effect and keeps the replaced value
// visible; End (it returned) leaves only its effect.

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// Kind is the kind of one step of the model.
type Kind uint8

const (
	Read   Kind = iota // a read that returned Output.Tok (0: not found)
	Write              // an atomic write of Tok (0: a delete)
	Begin              // a failed or optimistic write: its value is visible from here
	Commit             // a windowed write takes effect; the value it replaced stays visible
	Take               // a begun (optimistic) write takes effect: the old value is gone
	End                // a begun or windowed write returned (see EndMode)
	Note               // no effect on the value: an invalidation, a Sync, a failed write that changed nothing
)

// EndMode says how a begun or windowed write ended.
type EndMode uint8

const (
	EndOK     EndMode = iota // it succeeded: a Commit or Take came before
	EndFailed                // it failed and its effect was undone (or never happened): no Commit
	EndMaybe                 // it failed and may have taken effect
)

// Input is one step. It is comparable (the checkers key maps by
// porcupine.Operation).
type Input struct {
	Kind Kind
	ID   string
	Tok  int64 // written (Write, Begin...): 0 for a delete
	WID  int32 // links a Begin, Commit, Take and End
	Miss bool  // a read that may miss the cache: not-found is legal
	End  EndMode
	What string // the call, for the visualization
	// Shift is how far (ns) the replica checker moved a read's call back
	// (Δ-atomicity): 0 for a read held to linearizability.
	Shift int64
	// After names (by WID) a write that must have taken effect before a
	// read: the reading store's own last acknowledged write of the ID
	// (read-your-writes, when a read's call moved back past that write's
	// return). 0: none.
	After int32
}

// Output is the output of a read.
type Output struct{ Tok int64 }

// State is the state of one ID. Never modified in place: Step returns a new
// one.
type State struct {
	vals []int64     // possible logical values, sorted; 0: absent
	open []openWrite // writes between Begin (or Commit) and End
	olds []oldValue  // values replaced by an open write's Commit
	// done lists (sorted) the WIDs of the writes that took effect (Write,
	// Commit or Take with a WID), for Input.After. Given the operations
	// linearized so far it is determined, so it costs porcupine's cache
	// nothing.
	done []int32
}

// took records that the write wid took effect.
func (s State) took(wid int32) State {
	if wid == 0 {
		return s
	}
	i, found := slices.BinarySearch(s.done, wid)
	if !found {
		s.done = slices.Insert(slices.Clone(s.done), i, wid)
	}
	return s
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

func (s State) visibleInFlight(tok int64) bool {
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

func (s State) openIndex(wid int32) int {
	return slices.IndexFunc(s.open, func(w openWrite) bool { return w.wid == wid })
}

// Step is the model's step function.
func Step(st, input, output any) (bool, any) {
	s := st.(State)
	in := input.(Input)
	switch in.Kind {
	case Note:
		return true, s
	case Read:
		tok := output.(Output).Tok
		if in.After != 0 {
			if _, ok := slices.BinarySearch(s.done, in.After); !ok {
				return false, s // the reader's own acknowledged write comes first
			}
		}
		if s.visibleInFlight(tok) || (in.Miss && tok == 0) {
			return true, s
		}
		if !slices.Contains(s.vals, tok) {
			return false, s
		}
		if len(s.vals) > 1 {
			s.vals = []int64{tok} // the read decided which one it is
		}
		return true, s
	case Write:
		s.vals = []int64{in.Tok}
		return true, s.took(in.WID)
	case Begin:
		if s.openIndex(in.WID) >= 0 {
			return false, s
		}
		s.open = append(slices.Clone(s.open), openWrite{wid: in.WID, tok: in.Tok})
		return true, s
	case Commit:
		if s.openIndex(in.WID) >= 0 {
			return false, s
		}
		s.open = append(slices.Clone(s.open), openWrite{wid: in.WID, tok: in.Tok, committed: true})
		olds := slices.Clone(s.olds)
		for _, v := range s.vals {
			olds = append(olds, oldValue{in.WID, v})
		}
		s.olds = olds
		s.vals = []int64{in.Tok}
		return true, s.took(in.WID)
	case Take:
		i := s.openIndex(in.WID)
		if i < 0 || s.open[i].committed {
			return false, s
		}
		open := slices.Clone(s.open)
		open[i].committed = true
		s.open = open
		s.vals = []int64{in.Tok}
		return true, s.took(in.WID)
	case End:
		i := s.openIndex(in.WID)
		if i < 0 || (in.End == EndOK) != s.open[i].committed {
			return false, s
		}
		if in.End == EndMaybe && !slices.Contains(s.vals, in.Tok) {
			vals := append(slices.Clone(s.vals), in.Tok)
			slices.Sort(vals)
			s.vals = vals
		}
		s.open = slices.Delete(slices.Clone(s.open), i, i+1)
		s.olds = slices.DeleteFunc(slices.Clone(s.olds), func(o oldValue) bool { return o.wid == in.WID })
		return true, s
	}
	panic(fmt.Sprintf("lincheck: unknown step kind %d", in.Kind))
}

func equal(a, b any) bool {
	x, y := a.(State), b.(State)
	return slices.Equal(x.vals, y.vals) && sameSet(x.open, y.open) && sameSet(x.olds, y.olds) && slices.Equal(x.done, y.done)
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

func hash(st any) uint64 {
	s := st.(State)
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
	for _, w := range s.done {
		fmt.Fprint(h, "d", w)
	}
	return h.Sum64() ^ x
}

// DescribeTok renders a token for messages: "t12", or "absent" for 0.
func DescribeTok(tok int64) string {
	if tok == 0 {
		return "absent"
	}
	return fmt.Sprintf("t%d", tok)
}

// DescribeOp describes one step, for the visualization and Explain.
func DescribeOp(input, output any) string {
	in := input.(Input)
	switch in.Kind {
	case Read:
		s := fmt.Sprintf("%s(%s) → %s", in.What, in.ID, DescribeTok(output.(Output).Tok))
		if in.Miss {
			s += " (may miss)"
		}
		if in.Shift > 0 {
			s += fmt.Sprintf(" (call moved back %.1fµs)", float64(in.Shift)/1e3)
		}
		if in.After != 0 {
			s += fmt.Sprintf(" (after w%d)", in.After)
		}
		return s
	case Write:
		if in.WID != 0 {
			return fmt.Sprintf("%s(%s) = %s [w%d]", in.What, in.ID, DescribeTok(in.Tok), in.WID)
		}
		return fmt.Sprintf("%s(%s) = %s", in.What, in.ID, DescribeTok(in.Tok))
	case Begin:
		return fmt.Sprintf("%s(%s) = %s: visible from here [w%d]", in.What, in.ID, DescribeTok(in.Tok), in.WID)
	case Commit:
		return fmt.Sprintf("%s(%s) = %s: takes effect, the old value still visible [w%d]", in.What, in.ID, DescribeTok(in.Tok), in.WID)
	case Take:
		return fmt.Sprintf("%s(%s) = %s: takes effect [w%d]", in.What, in.ID, DescribeTok(in.Tok), in.WID)
	case End:
		how := map[EndMode]string{EndOK: "returned ok", EndFailed: "failed, undone", EndMaybe: "failed, may have taken effect"}[in.End]
		return fmt.Sprintf("%s(%s) = %s: %s [w%d]", in.What, in.ID, DescribeTok(in.Tok), how, in.WID)
	}
	return fmt.Sprintf("%s (%s)", in.What, in.ID)
}

// DescribeState describes a state, for the visualization and Explain.
func DescribeState(st any) string {
	s := st.(State)
	vals := make([]string, len(s.vals))
	for i, v := range s.vals {
		vals[i] = DescribeTok(v)
	}
	out := strings.Join(vals, " or ")
	if len(s.open) > 0 {
		ws := make([]string, 0, len(s.open))
		for _, w := range slices.SortedFunc(slices.Values(s.open), func(a, b openWrite) int { return cmp.Compare(a.wid, b.wid) }) {
			d := fmt.Sprintf("w%d %s", w.wid, DescribeTok(w.tok))
			if w.committed {
				d += " (took effect)"
			}
			for _, o := range s.olds {
				if o.wid == w.wid {
					d += " (was " + DescribeTok(o.tok) + ")"
				}
			}
			ws = append(ws, d)
		}
		out += "; in flight: " + strings.Join(ws, ", ")
	}
	return out
}

// Model is the per-ID model, partitioned by ID.
var Model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byID := map[string][]porcupine.Operation{}
		var ids []string
		for _, op := range history {
			id := op.Input.(Input).ID
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
	Init:              func() any { return State{vals: []int64{0}} },
	Step:              Step,
	Equal:             equal,
	Hash:              hash,
	DescribeOperation: DescribeOp,
	DescribeState:     DescribeState,
}

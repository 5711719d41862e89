package lincheck

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

// TestLinearizabilityModel checks the model on small hand-written histories:
// what it must accept, and the stale reads it must reject.
func TestLinearizabilityModel(t *testing.T) {
	type step struct {
		call, ret int64
		in        Input
		out       int64
	}
	w := func(call, ret, tok int64) step { return step{call, ret, Input{Kind: Write, Tok: tok}, 0} }
	r := func(call, ret, tok int64) step { return step{call, ret, Input{Kind: Read}, tok} }
	miss := func(call, ret, tok int64) step { return step{call, ret, Input{Kind: Read, Miss: true}, tok} }
	begin := func(call, ret, tok int64, wid int32) step {
		return step{call, ret, Input{Kind: Begin, Tok: tok, WID: wid}, 0}
	}
	commit := func(call, ret, tok int64, wid int32) step {
		return step{call, ret, Input{Kind: Commit, Tok: tok, WID: wid}, 0}
	}
	end := func(call, ret, tok int64, wid int32, m EndMode) step {
		return step{call, ret, Input{Kind: End, Tok: tok, WID: wid, End: m}, 0}
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
		{"two failed writes in flight", []step{w(0, 1, 1), begin(2, 9, 2, 1), end(2, 9, 2, 1, EndFailed), begin(2, 9, 3, 2), end(2, 9, 3, 2, EndFailed), r(3, 4, 3), r(5, 6, 2), r(7, 8, 1)}, true},
		{"cache-only read may miss", []step{w(0, 1, 1), miss(2, 3, 0)}, true},
		{"a miss is no stale value", []step{w(0, 1, 1), w(2, 3, 2), miss(4, 5, 1)}, false},
		{"other reads may not miss", []step{w(0, 1, 1), r(2, 3, 0)}, false},
		{"failed write visible in flight", []step{w(0, 1, 1), begin(2, 9, 2, 1), end(2, 9, 2, 1, EndFailed), r(3, 4, 2), r(5, 6, 1)}, true},
		{"failed write invisible after it returned", []step{w(0, 1, 1), begin(2, 3, 2, 1), end(2, 3, 2, 1, EndFailed), r(4, 5, 2)}, false},
		// Windowed writes (atomicWrites false).
		{"network write: old value visible in flight", []step{w(0, 1, 1), commit(2, 9, 2, 1), end(2, 9, 2, 1, EndOK), r(3, 4, 2), r(5, 6, 1)}, true},
		{"network write: old value gone after it returned", []step{w(0, 1, 1), commit(2, 3, 2, 1), end(2, 3, 2, 1, EndOK), r(4, 5, 1)}, false},
		{"network write: new value after it returned", []step{w(0, 1, 1), commit(2, 3, 2, 1), end(2, 3, 2, 1, EndOK), r(4, 5, 2)}, true},
		{"maybe: either value after", []step{w(0, 1, 1), begin(2, 3, 2, 1), end(2, 3, 2, 1, EndMaybe), r(4, 5, 1)}, true},
		{"maybe: the first read decides", []step{w(0, 1, 1), begin(2, 3, 2, 1), end(2, 3, 2, 1, EndMaybe), r(4, 5, 2), r(6, 7, 1)}, false},
		{"maybe: a later write wins", []step{w(0, 1, 1), begin(2, 3, 2, 1), end(2, 3, 2, 1, EndMaybe), w(4, 5, 3), r(6, 7, 2)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ops []porcupine.Operation
			for i, s := range tt.steps {
				s.in.ID = "k"
				ops = append(ops, porcupine.Operation{ClientId: i, Input: s.in, Call: s.call, Output: Output{s.out}, Return: s.ret})
			}
			if got := porcupine.CheckOperations(Model, ops); got != tt.ok {
				t.Errorf("linearizable = %v, want %v", got, tt.ok)
			}
		})
	}
}

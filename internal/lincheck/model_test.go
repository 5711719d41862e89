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

// TestTakeModel checks the optimistic write's steps (Begin, Take, End).
func TestTakeModel(t *testing.T) {
	type step struct {
		call, ret int64
		in        Input
		out       int64
	}
	w := func(call, ret, tok int64) step { return step{call, ret, Input{Kind: Write, Tok: tok}, 0} }
	r := func(call, ret, tok int64) step { return step{call, ret, Input{Kind: Read}, tok} }
	opt := func(call, ret, tok int64, wid int32) []step {
		return []step{
			{call, ret, Input{Kind: Begin, Tok: tok, WID: wid}, 0},
			{call, ret, Input{Kind: Take, Tok: tok, WID: wid}, 0},
			{call, ret, Input{Kind: End, Tok: tok, WID: wid, End: EndOK}, 0},
		}
	}
	tests := []struct {
		name  string
		steps []step
		ok    bool
	}{
		{"new value early, old value until it takes effect", append([]step{w(0, 1, 1), r(3, 4, 2), r(5, 6, 1)}, opt(2, 9, 2, 1)...), true},
		{"old value gone after it returned", append([]step{w(0, 1, 1), r(10, 11, 1)}, opt(2, 9, 2, 1)...), false},
		{"new value after it returned", append([]step{w(0, 1, 1), r(10, 11, 2)}, opt(2, 9, 2, 1)...), true},
		{"once a read saw the old value after another saw the new one, no going back", append([]step{w(0, 1, 1), r(3, 4, 1), w(5, 6, 3), r(7, 8, 1)}, opt(2, 9, 2, 1)...), false},
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

// TestReplicaModel checks the replica model (Δ-atomicity for the reads a
// cache may answer, read-your-writes per store, the held entry of a
// network-first write, changes lost in a feed outage, the tolerance of a
// known store deviation) on hand-made histories of stores 0 (A) and 1 (B),
// Δ = 10.
func TestReplicaModel(t *testing.T) {
	const delta = 10
	nf := func(store int, call, ret, tok int64) rWrite {
		return rWrite{store: store, id: "k", tok: tok, call: call, ret: ret, outcome: wOK, what: "Save[network_first]"}
	}
	cn := func(store int, call, ret, tok int64) rWrite {
		w := nf(store, call, ret, tok)
		w.optimistic, w.what = true, "Save[cache_and_network]"
		return w
	}
	failedNF := func(store int, call, ret, tok int64) rWrite {
		w := nf(store, call, ret, tok)
		w.outcome = wNoEffect
		return w
	}
	cached := func(store int, call, ret, tok int64) rRead {
		return rRead{store: store, id: "k", tok: tok, call: call, ret: ret, what: "Get[cache_first]"}
	}
	network := func(store int, call, ret, tok int64) rRead {
		r := cached(store, call, ret, tok)
		r.network, r.what = true, "Get[network_only]"
		return r
	}
	joined := func(store int, call, ret, tok int64) rRead {
		r := network(store, call, ret, tok)
		r.joined = true
		return r
	}
	staleOK := func(store int, call, ret, tok int64) rRead {
		r := cached(store, call, ret, tok)
		r.staleOK, r.what = true, "Get[stale_while_revalidate]"
		return r
	}
	fallback := func(store int, call, ret, tok int64) rRead {
		r := cached(store, call, ret, tok)
		r.fallback, r.what = true, "Get[network_first] (fell back)"
		return r
	}
	tests := []struct {
		name     string
		writes   []rWrite
		reads    []rRead
		seen     []storeOutage
		tolerate bool
		ok       bool
	}{
		{"a cached read may return a value replaced within Δ",
			[]rWrite{nf(0, 0, 1, 1), nf(0, 20, 21, 2)}, []rRead{cached(1, 25, 26, 1)}, nil, false, true},
		{"not one replaced more than Δ before it",
			[]rWrite{nf(0, 0, 1, 1), nf(0, 20, 21, 2)}, []rRead{cached(1, 35, 36, 1)}, nil, false, false},
		{"a network read is linearizable",
			[]rWrite{nf(0, 0, 1, 1), nf(0, 20, 21, 2)}, []rRead{network(1, 25, 26, 1)}, nil, false, false},
		{"a network read during the write may see either value",
			[]rWrite{nf(0, 0, 1, 1), nf(0, 20, 30, 2)}, []rRead{network(1, 22, 23, 1), network(1, 24, 25, 2)}, nil, false, true},
		{"read-your-writes: never a value older than the store's own acknowledged write",
			[]rWrite{nf(1, 0, 1, 1), nf(0, 20, 21, 2), nf(1, 30, 31, 3)}, []rRead{cached(1, 32, 33, 2)}, nil, false, false},
		{"read-your-writes: the own write, superseded before it returned, within Δ",
			[]rWrite{nf(1, 0, 10, 1), nf(0, 3, 6, 2)}, []rRead{network(0, 11, 12, 2), cached(1, 13, 14, 1)}, nil, false, true},
		{"the own write, superseded more than Δ ago",
			[]rWrite{nf(1, 0, 10, 1), nf(0, 3, 6, 2)}, []rRead{network(0, 11, 12, 2), cached(1, 30, 31, 1)}, nil, false, false},
		{"... which the tolerance of a known deviation accepts",
			[]rWrite{nf(1, 0, 10, 1), nf(0, 3, 6, 2)}, []rRead{network(0, 11, 12, 2), cached(1, 30, 31, 1)}, nil, true, true},
		{"a failed network-first write's held value, superseded more than Δ ago",
			[]rWrite{nf(0, 0, 1, 1), failedNF(1, 20, 30, 9), nf(0, 22, 23, 2)}, []rRead{cached(1, 60, 61, 1)}, nil, false, false},
		{"... which the tolerance of a known deviation accepts",
			[]rWrite{nf(0, 0, 1, 1), failedNF(1, 20, 30, 9), nf(0, 22, 23, 2)}, []rRead{cached(1, 60, 61, 1)}, nil, true, true},
		{"the tolerance is for the own write only",
			[]rWrite{nf(0, 0, 1, 1), nf(1, 20, 21, 2), nf(0, 22, 23, 3)}, []rRead{network(0, 24, 25, 3), cached(1, 40, 41, 1)}, nil, true, false},
		{"a network read that shared an older read's backend call",
			[]rWrite{nf(0, 0, 1, 1), nf(0, 20, 21, 2)}, []rRead{joined(1, 25, 26, 1)}, nil, false, false},
		{"... which the tolerance of a known deviation holds to Δ",
			[]rWrite{nf(0, 0, 1, 1), nf(0, 20, 21, 2)}, []rRead{joined(1, 25, 26, 1)}, nil, true, true},
		{"an optimistic write: the writer sees it early, another store's network read the old value",
			[]rWrite{nf(0, 0, 1, 1), cn(0, 10, 30, 2)}, []rRead{cached(0, 11, 12, 2), network(1, 13, 14, 1)}, nil, false, true},
		{"an optimistic write: the old value gone for network reads once it returned",
			[]rWrite{nf(0, 0, 1, 1), cn(0, 10, 30, 2)}, []rRead{network(1, 31, 32, 1)}, nil, false, false},
		{"a network-first write holds its store's entry: the old value while it is in flight",
			[]rWrite{nf(1, 0, 1, 1), nf(0, 10, 40, 2)}, []rRead{network(1, 20, 21, 2), network(0, 30, 31, 1)}, nil, false, true},
		{"but not once it returned",
			[]rWrite{nf(1, 0, 1, 1), nf(0, 10, 40, 2)}, []rRead{network(1, 20, 21, 2), network(0, 41, 42, 1)}, nil, false, false},
		{"a fallback during a feed outage may return what the cache held when it began",
			[]rWrite{nf(0, 0, 1, 1), nf(0, 21, 22, 2)}, []rRead{fallback(1, 38, 39, 1)}, []storeOutage{{1, 20, 22, 40}}, false, true},
		{"not without an outage",
			[]rWrite{nf(0, 0, 1, 1), nf(0, 21, 22, 2)}, []rRead{fallback(1, 38, 39, 1)}, nil, false, false},
		{"nor on another store",
			[]rWrite{nf(0, 0, 1, 1), nf(0, 21, 22, 2)}, []rRead{fallback(1, 38, 39, 1)}, []storeOutage{{0, 20, 22, 40}}, false, false},
		{"nor a cache read that is no fallback, once the store heard of the outage",
			[]rWrite{nf(0, 0, 1, 1), nf(0, 21, 22, 2)}, []rRead{cached(1, 38, 39, 1)}, []storeOutage{{1, 20, 22, 40}}, false, false},
		{"a stale-serving read between the FeedError and the reset (entries read as stale, docs/store.md)",
			[]rWrite{nf(0, 0, 1, 1), nf(0, 21, 22, 2)}, []rRead{staleOK(1, 38, 39, 1)}, []storeOutage{{1, 20, 22, 40}}, false, true},
		{"but not after the reset",
			[]rWrite{nf(0, 0, 1, 1), nf(0, 21, 22, 2)}, []rRead{staleOK(1, 42, 43, 1)}, []storeOutage{{1, 20, 22, 40}}, false, false},
		{"but before it heard of it",
			[]rWrite{nf(0, 0, 1, 1), nf(0, 21, 22, 2)}, []rRead{cached(1, 38, 39, 1)}, []storeOutage{{1, 20, 45, 50}}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &history{writes: tt.writes, reads: tt.reads, seen: tt.seen}
			ops, _ := h.operations(delta, tt.tolerate)
			if got := porcupine.CheckOperations(Model, ops); got != tt.ok {
				t.Errorf("linearizable = %v, want %v\n%s", got, tt.ok, Listing(ops))
			}
		})
	}
}

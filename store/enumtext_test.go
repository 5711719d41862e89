package store_test

import (
	"encoding"
	"encoding/json"
	"expvar"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nexusstore/nexus/store"
)

// Issue 10, item 8: StoreStats encodes with names as keys ("get", "hit",
// "completed"), not numbers, and decodes back to the same value.
func TestStoreStatsJSONRoundTrip(t *testing.T) {
	st := store.StoreStats{
		OperationCounts:  map[store.OperationType]int64{store.OpGet: 1679, store.OpSaveAll: 2},
		AverageDurations: map[store.OperationType]time.Duration{store.OpGet: 420 * time.Nanosecond},
		TotalDurations:   map[store.OperationType]time.Duration{store.OpGet: 705 * time.Microsecond},
		FailureCounts:    map[store.OperationType]int64{store.OpSaveAll: 1},
		CacheEvents:      map[store.CacheEvent]int64{store.CacheHit: 1500, store.CacheMiss: 179},
		SyncEvents:       map[store.SyncEvent]int64{store.SyncCompleted: 3, store.SyncConflictResolved: 1},
		Durations: map[store.OperationType]store.DurationHistogram{
			store.OpGet: {Bounds: []time.Duration{time.Microsecond}, Counts: []int64{1600, 79}},
		},
		CacheHitRate: 1500.0 / 1679,
		ErrorCount:   1,
		Start:        time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		End:          time.Date(2026, 12, 1, 10, 1, 0, 0, time.UTC),
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"OperationCounts":{"get":1679,"save_all":2}`, `"CacheEvents":{"hit":1500,"miss":179}`,
		`"SyncEvents":{"completed":3,"conflict_resolved":1}`, `"Durations":{"get":`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
	var back store.StoreStats
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, st) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, st)
	}
}

// Every small enum of the package marshals to its name and back, and
// refuses what has no name.
func TestEnumsAsText(t *testing.T) {
	type enum interface {
		encoding.TextMarshaler
		String() string
	}
	check := func(t *testing.T, v enum, into encoding.TextUnmarshaler, want string) {
		t.Helper()
		b, err := v.MarshalText()
		if err != nil || string(b) != want {
			t.Errorf("%T(%v).MarshalText() = %q, %v; want %q", v, v, b, err, want)
			return
		}
		if err := into.UnmarshalText(b); err != nil {
			t.Errorf("UnmarshalText(%q): %v", b, err)
		}
		if got := reflect.ValueOf(into).Elem().Interface(); got != v {
			t.Errorf("UnmarshalText(%q) = %v, want %v", b, got, v)
		}
	}
	for op := store.OpGet; op.Valid(); op++ {
		check(t, op, new(store.OperationType), op.String())
	}
	for e := store.CacheEvent(0); e.Valid(); e++ {
		check(t, e, new(store.CacheEvent), e.String())
	}
	for e := store.SyncEvent(0); e.Valid(); e++ {
		check(t, e, new(store.SyncEvent), e.String())
	}
	for _, r := range []store.CacheResult{store.CacheResultNone, store.CacheResultHit, store.CacheResultMiss} {
		check(t, r, new(store.CacheResult), r.String())
	}
	for _, p := range []store.FetchPolicy{store.FetchCacheFirst, store.FetchStaleWhileRevalidate} {
		check(t, p, new(store.FetchPolicy), p.String())
	}
	for _, p := range []store.WritePolicy{store.WriteCacheAndNetwork, store.WriteCacheOnly} {
		check(t, p, new(store.WritePolicy), p.String())
	}
	check(t, store.PolicyNone, new(store.Policy), "")
	check(t, store.FetchCacheFirst.Policy(), new(store.Policy), "fetch:cache_first")
	check(t, store.WriteCacheFirst.Policy(), new(store.Policy), "write:cache_first")
	for p := store.PolicyNone; p.Valid(); p++ {
		b, err := p.MarshalText()
		var back store.Policy
		if err != nil || back.UnmarshalText(b) != nil || back != p {
			t.Errorf("Policy %d: %q, %v, back %d", p, b, err, back)
		}
	}
	check(t, store.SyncStatusPending, new(store.SyncStatus), "pending")
	check(t, store.ConflictLatestWins, new(store.ConflictStrategy), "latest_wins")

	if _, err := store.OperationType(200).MarshalText(); err == nil {
		t.Error("OperationType(200) marshals")
	}
	var op store.OperationType
	if err := op.UnmarshalText([]byte("gett")); err == nil || !strings.Contains(err.Error(), "gett") {
		t.Errorf("unknown name: %v", err)
	}
	var p store.Policy
	if err := p.UnmarshalText([]byte("cache_first")); err == nil {
		t.Error("an ambiguous policy name unmarshals")
	}
}

// StatsFunc publishes a store's stats as an expvar variable.
func TestStatsFuncIsAnExpvar(t *testing.T) {
	calls := 0
	var v expvar.Var = store.StatsFunc(func() store.StoreStats {
		calls++
		return store.StoreStats{OperationCounts: map[store.OperationType]int64{store.OpGet: 2}}
	})
	var got struct{ OperationCounts map[string]int64 }
	if err := json.Unmarshal([]byte(v.String()), &got); err != nil {
		t.Fatal(err)
	}
	if got.OperationCounts["get"] != 2 || calls != 1 {
		t.Errorf("expvar value %s (calls %d)", v.String(), calls)
	}
}

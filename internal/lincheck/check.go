package lincheck

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// LongEnv names the environment variable that selects the long mode: a
// duration (NEXUS_CHECK_LONG=10m) shared by the checkers, each generating
// histories until its share elapses.
const LongEnv = "NEXUS_CHECK_LONG"

// Budget returns how long a checker keeps generating histories: def in the
// default mode (a quarter of it with -short), or share of the duration in
// NEXUS_CHECK_LONG. It never runs into the test binary's -timeout.
func Budget(t testing.TB, def time.Duration, share float64) time.Duration {
	t.Helper()
	d := def
	if v := os.Getenv(LongEnv); v != "" {
		long, err := time.ParseDuration(v)
		if err != nil || long <= 0 {
			t.Fatalf("%s=%q: want a positive duration such as 10m", LongEnv, v)
		}
		d = time.Duration(float64(long) * share)
	} else if testing.Short() {
		d /= 4
	}
	if tt, ok := t.(*testing.T); ok {
		if dl, ok := tt.Deadline(); ok {
			// Leave room for checking the last history and reporting.
			d = min(d, time.Until(dl)/2)
		}
	}
	return d
}

// Verdict is what Check concluded.
type Verdict uint8

const (
	Linearizable Verdict = iota
	Illegal
	Undecided // porcupine could not decide in time
)

// Check checks ops against Model. The plain check stops at the first
// illegal ID; only a failing history pays for the verbose one, which keeps
// the partial linearizations that the visualization and the explanation
// need: it is written as HTML to os.TempDir()/nexus-<name>.html, and the
// returned report names that path and explains where the longest
// linearization gets stuck (empty unless Illegal).
func Check(ops []porcupine.Operation, name string, timeout time.Duration) (Verdict, string) {
	// Notes change nothing: only the visualization needs them.
	checked := slices.DeleteFunc(slices.Clone(ops), func(op porcupine.Operation) bool { return op.Input.(Input).Kind == Note })
	switch porcupine.CheckOperationsTimeout(Model, checked, timeout) {
	case porcupine.Unknown:
		return Undecided, ""
	case porcupine.Ok:
		return Linearizable, ""
	}
	_, info := porcupine.CheckOperationsVerbose(Model, ops, 4*timeout)
	path := filepath.Join(os.TempDir(), "nexus-"+name+".html")
	var b strings.Builder
	if err := porcupine.VisualizePath(Model, info, path); err != nil {
		fmt.Fprintf(&b, "writing the visualization: %v\n", err)
	} else {
		fmt.Fprintf(&b, "visualization: %s\n", path)
	}
	txt := strings.TrimSuffix(path, ".html") + ".txt"
	if err := os.WriteFile(txt, []byte(Listing(ops)), 0o644); err != nil {
		fmt.Fprintf(&b, "writing the listing: %v\n", err)
	} else {
		fmt.Fprintf(&b, "every operation, by ID and call: %s\n", txt)
	}
	b.WriteString(Explain(ops, info))
	return Illegal, b.String()
}

// Listing renders every operation, by ID and then by call (µs since the
// history started; a read whose call the replica checker moved back shows
// by how much).
func Listing(ops []porcupine.Operation) string {
	var b strings.Builder
	for _, part := range Model.Partition(ops) {
		part = slices.Clone(part)
		slices.SortStableFunc(part, func(x, y porcupine.Operation) int {
			return cmp.Compare(x.Call+x.Input.(Input).Shift, y.Call+y.Input.(Input).Shift)
		})
		fmt.Fprintf(&b, "%s:\n", part[0].Input.(Input).ID)
		for _, op := range part {
			fmt.Fprintf(&b, "    [%9.1f, %9.1f] client %d: %s\n", float64(op.Call+op.Input.(Input).Shift)/1e3, float64(op.Return)/1e3, op.ClientId, DescribeOp(op.Input, op.Output))
		}
	}
	return b.String()
}

// Explain describes, for each ID whose history is not linearizable, where
// the longest linearization porcupine found gets stuck: the state there,
// the operation that cannot follow, and the operations just before it
// (times in µs since the history started).
func Explain(ops []porcupine.Operation, info porcupine.LinearizationInfo) string {
	var b strings.Builder
	line := func(op porcupine.Operation) {
		fmt.Fprintf(&b, "    [%9.1f, %9.1f] client %d: %s\n", float64(op.Call)/1e3, float64(op.Return)/1e3, op.ClientId, DescribeOp(op.Input, op.Output))
	}
	partials := info.PartialLinearizationsOperations()
	for i, part := range Model.Partition(ops) {
		if i >= len(partials) {
			break
		}
		var longest []porcupine.Operation
		for _, l := range partials[i] {
			if len(l) > len(longest) {
				longest = l
			}
		}
		if len(longest) == len(part) {
			continue // linearizable
		}
		st := Model.Init()
		done := map[porcupine.Operation]bool{}
		for _, op := range longest {
			_, st = Model.Step(st, op.Input, op.Output)
			done[op] = true
		}
		var stuck porcupine.Operation
		found := false
		for _, op := range part {
			if !done[op] && (!found || op.Return < stuck.Return) {
				stuck, found = op, true
			}
		}
		if !found {
			continue
		}
		fmt.Fprintf(&b, "  %s: after %d of %d operations the value is %s; this cannot follow:\n", part[0].Input.(Input).ID, len(longest), len(part), DescribeState(st))
		line(stuck)
		b.WriteString("  the operations before it and beside it:\n")
		var near []porcupine.Operation
		for _, op := range part {
			if op != stuck && op.Call <= stuck.Return {
				near = append(near, op)
			}
		}
		slices.SortFunc(near, func(x, y porcupine.Operation) int { return cmp.Compare(x.Return, y.Return) })
		for _, op := range near[max(0, len(near)-12):] {
			line(op)
		}
	}
	return b.String()
}

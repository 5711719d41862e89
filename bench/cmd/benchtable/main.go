// Command benchtable turns benchstat's CSV output (benchstat -format csv)
// into the tables of docs/performance.md, as Markdown. scripts/bench runs
// it; it reads the CSV on standard input.
//
//	benchtable            the suite's table (one input) and the issue-12 targets
//	benchtable -mode sdk  the same benchmarks on two or more inputs, side by side
//	benchtable -mode pg   store/postgres: the store against raw pgx
//
// Ratios use benchstat's medians. The added cost of a configuration is its
// ns/op minus the no-op reporter's for the same operation and run; its
// ratio to the usual way's added cost is what issue 12 targets.
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

func main() {
	mode := flag.String("mode", "suite", "suite, sdk or pg")
	flag.Parse()
	res, err := parse(os.Stdin)
	if err == nil && len(res.groups) == 0 {
		err = errors.New("no benchmark results in the input")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	switch *mode {
	case "suite":
		suite(os.Stdout, res)
	case "sdk":
		sdk(os.Stdout, res)
	case "pg":
		pg(os.Stdout, res)
	default:
		fmt.Fprintf(os.Stderr, "benchtable: unknown -mode %q\n", *mode)
		os.Exit(2)
	}
}

// summary is benchstat's summary of one benchmark in one input: the
// median and the confidence interval as benchstat prints it ("3%", "∞").
type summary struct {
	center float64
	ci     string
	ok     bool
}

// results are the summaries by unit, benchmark and input.
type results struct {
	groups []string // the inputs' labels, in benchstat's order
	names  []string // the benchmarks, in benchstat's order
	values map[string]map[string][]summary
	// delta is benchstat's "vs base" of sec/op, for inputs after the first.
	delta map[string][]string
}

func (r *results) get(unit, name string, group int) summary {
	s := r.values[unit][name]
	if group < len(s) {
		return s[group]
	}
	return summary{}
}

// procs is the GOMAXPROCS suffix of a benchmark name.
var procs = regexp.MustCompile(`-\d+$`)

// parse reads benchstat's CSV: sections of a label row, a unit row
// (",sec/op,CI,sec/op,CI,vs base,P"), then one row per benchmark; the
// goos/pkg/cpu lines and geomean rows are skipped.
func parse(in io.Reader) (*results, error) {
	cr := csv.NewReader(in)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	r := &results{values: map[string]map[string][]summary{}, delta: map[string][]string{}}
	seen := map[string]bool{}
	var labels []string
	var unit string
	var cols []int // the value column of each input
	deltaCol := -1
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return r, nil
		}
		if err != nil {
			return nil, err
		}
		switch {
		case len(rec) < 2:
			// goos:, pkg:, cpu: lines
		case rec[0] == "" && len(rec) > 2 && rec[2] == "CI":
			unit, cols, deltaCol = rec[1], nil, -1
			for i := 1; i < len(rec); i++ {
				switch rec[i] {
				case unit:
					cols = append(cols, i)
				case "vs base":
					deltaCol = i
				}
			}
			if r.groups == nil {
				for _, c := range cols {
					if c < len(labels) {
						r.groups = append(r.groups, labels[c])
					}
				}
			}
			if r.values[unit] == nil {
				r.values[unit] = map[string][]summary{}
			}
		case rec[0] == "":
			labels = rec
		case rec[0] == "geomean" || unit == "":
		default:
			name := procs.ReplaceAllString(rec[0], "")
			if !seen[name] {
				seen[name] = true
				r.names = append(r.names, name)
			}
			var row []summary
			for _, c := range cols {
				s := summary{}
				if c+1 < len(rec) {
					if v, err := strconv.ParseFloat(rec[c], 64); err == nil {
						s = summary{center: v, ci: rec[c+1], ok: true}
					}
				}
				row = append(row, s)
			}
			r.values[unit][name] = row
			if unit == "sec/op" && deltaCol >= 0 && deltaCol < len(rec) {
				r.delta[name] = append(r.delta[name], rec[deltaCol])
			}
		}
	}
}

// ns returns a benchmark's median ns/op in input group.
func (r *results) ns(name string, group int) (float64, bool) {
	s := r.get("sec/op", name, group)
	return s.center * 1e9, s.ok
}

// row is a suite benchmark name split: BenchmarkGetHit/serial/otel.
type row struct{ op, run, cfg string }

func split(name string) (row, bool) {
	parts := strings.Split(strings.TrimPrefix(name, "Benchmark"), "/")
	if len(parts) != 3 {
		return row{}, false
	}
	return row{parts[0], parts[1], parts[2]}, true
}

func (w row) name(cfg string) string { return w.op + "/" + w.run + "/" + cfg }

// isStore says whether a configuration is the store under a reporter (the
// floor and the anchor caches are not).
func isStore(cfg string) bool { return cfg != "map" && cfg != "ristretto" && cfg != "otter" }

// added returns what cfg adds to the no-op store for w's operation and run,
// and the usual way's added cost.
func (r *results) added(w row, group int) (x, usual float64, ok bool) {
	v, ok1 := r.ns(w.name(w.cfg), group)
	noop, ok2 := r.ns(w.name("noop"), group)
	u, ok3 := r.ns(w.name("usual"), group)
	return v - noop, u - noop, ok1 && ok2 && ok3 && isStore(w.cfg)
}

func suite(out io.Writer, r *results) {
	fmt.Fprintln(out, "| operation | run | configuration | ns/op | ± | allocs/op | added ns | added / usual's added | × map |")
	fmt.Fprintln(out, "|---|---|---|--:|--:|--:|--:|--:|--:|")
	for _, name := range r.names {
		w, ok := split(name)
		if !ok {
			continue
		}
		v, ok := r.ns(name, 0)
		if !ok {
			continue
		}
		addedNs, addedRatio, mapRatio := "—", "—", "—"
		if noop, ok := r.ns(w.name("noop"), 0); ok && isStore(w.cfg) {
			addedNs = fmt.Sprintf("%.0f", v-noop)
			if u, ok := r.ns(w.name("usual"), 0); ok && u > noop {
				addedRatio = fmt.Sprintf("%.2f", (v-noop)/(u-noop))
			}
		}
		if m, ok := r.ns(w.name("map"), 0); ok && m > 0 {
			mapRatio = fmt.Sprintf("%.2f", v/m)
		}
		s := r.get("sec/op", name, 0)
		allocs := "—"
		if a := r.get("allocs/op", name, 0); a.ok {
			allocs = strconv.FormatFloat(a.center, 'f', -1, 64)
		}
		fmt.Fprintf(out, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			w.op, w.run, w.cfg, formatNs(v), s.ci, allocs, addedNs, addedRatio, mapRatio)
	}
	fmt.Fprintln(out)
	targets(out, r)
	fmt.Fprintln(out)
	meaning(out, r)
}

// targets prints issue 12's three targets against this run's medians.
func targets(out io.Writer, r *results) {
	fmt.Fprintln(out, "Issue 12 targets (cache-hit Get, benchstat medians of this run):")
	hit := row{op: "GetHit", run: "serial", cfg: "otel"}
	if x, u, ok := r.added(hit, 0); ok && u > 0 {
		verdict(out, x/u <= 0.25, "nexusotel added cost %.0f ns = %.2f× the usual way's %.0f ns (target ≤ 0.25×)", x, x/u, u)
	} else {
		fmt.Fprintln(out, "- not measured: nexusotel added cost vs the usual way's (needs GetHit/serial noop, otel, usual)")
	}
	nothing, ok1 := r.ns(hit.name("nothing"), 0)
	noop, ok2 := r.ns(hit.name("noop"), 0)
	if ok1 && ok2 {
		verdict(out, nothing-noop <= 80, "the store's own side (nothing − noop) %.0f ns (target ≤ 80 ns)", nothing-noop)
	} else {
		fmt.Fprintln(out, "- not measured: the store's own side (needs GetHit/serial noop, nothing)")
	}
	par, ok3 := r.ns(row{op: "GetHit", run: "parallel"}.name("noop"), 0)
	if ok2 && ok3 {
		verdict(out, par <= 0.6*noop, "parallel no-op hit %s ns/op = %.2f× serial %s (target ≤ 0.6×)", formatNs(par), par/noop, formatNs(noop))
	} else {
		fmt.Fprintln(out, "- not measured: parallel scaling (needs GetHit serial and parallel noop)")
	}
}

// meaning prints what the added costs are worth to a user: against the
// operation itself and against a backend call of 1 ms.
func meaning(out io.Writer, r *results) {
	fmt.Fprintln(out, "What it means (serial medians of this run; a backend call of 1 ms = 1,000,000 ns):")
	for _, op := range []struct{ op, what string }{
		{"GetHit", "a cache hit"},
		{"GetMiss", "a cache miss over the in-memory backend"},
		{"Save", "a Save over the in-memory backend"},
	} {
		base, ok := r.ns(row{op: op.op, run: "serial"}.name("noop"), 0)
		if !ok {
			continue
		}
		for _, cfg := range []string{"nothing", "otel", "otel_sample_0.01", "usual"} {
			v, ok := r.ns(row{op: op.op, run: "serial"}.name(cfg), 0)
			if !ok {
				continue
			}
			fmt.Fprintf(out, "- %s, %s: adds %.0f ns to %s of %s ns (%.0f%% of the instrumented %s ns); %.3f%% of a 1 ms backend call\n",
				op.op, cfg, v-base, op.what, formatNs(base), 100*(v-base)/v, formatNs(v), 100*(v-base)/1e6)
		}
	}
}

func verdict(out io.Writer, pass bool, format string, args ...any) {
	v := "FAIL"
	if pass {
		v = "PASS"
	}
	fmt.Fprintf(out, "- %s: %s\n", v, fmt.Sprintf(format, args...))
}

// sdk prints each benchmark under every input side by side, with the
// added-cost ratio per input.
func sdk(out io.Writer, r *results) {
	head := "| operation | run | configuration |"
	sep := "|---|---|---|"
	for _, g := range r.groups {
		head += fmt.Sprintf(" %s ns/op | ± |", g)
		sep += "--:|--:|"
	}
	if len(r.groups) > 1 {
		head += " vs " + r.groups[0] + " |"
		sep += "--:|"
	}
	for _, g := range r.groups {
		head += fmt.Sprintf(" added / usual's (%s) |", g)
		sep += "--:|"
	}
	fmt.Fprintln(out, head)
	fmt.Fprintln(out, sep)
	for _, name := range r.names {
		w, ok := split(name)
		if !ok {
			continue
		}
		line := fmt.Sprintf("| %s | %s | %s |", w.op, w.run, w.cfg)
		for g := range r.groups {
			s := r.get("sec/op", name, g)
			if s.ok {
				line += fmt.Sprintf(" %s | %s |", formatNs(s.center*1e9), s.ci)
			} else {
				line += " — | |"
			}
		}
		if len(r.groups) > 1 {
			d := strings.Join(r.delta[name], ", ")
			line += " " + d + " |"
		}
		for g := range r.groups {
			if x, u, ok := r.added(w, g); ok && u > 0 {
				line += fmt.Sprintf(" %.2f (%.0f / %.0f ns) |", x/u, x, u)
			} else {
				line += " — |"
			}
		}
		fmt.Fprintln(out, line)
	}
}

// pgRows are store/postgres's benchmarks, grouped by the raw pgx call they
// are measured against (the first of each group).
var pgRows = []struct{ group, name, label string }{
	{"Get", "GetRawPgx", "raw pgx: QueryRow, JSON decode"},
	{"Get", "Get", "postgres.Backend.Get"},
	{"Get", "StoreGet", "Store.Get, FetchNetworkOnly (every call reaches the server)"},
	{"Get", "StoreGetHit", "Store.Get, cache hit (no network)"},
	{"Save", "SaveRawPgx", "raw pgx: JSON encode, upsert RETURNING"},
	{"Save", "Save", "postgres.Backend.Save"},
	{"Save", "StoreSave/no_feed", "Store.Save, write-through, change feed hidden"},
	{"Save", "StoreSave/feed", "Store.Save, write-through, with the change feed"},
}

func pg(out io.Writer, r *results) {
	fmt.Fprintln(out, "| operation | benchmark | what | µs/op | ± | allocs/op | vs raw pgx |")
	fmt.Fprintln(out, "|---|---|---|--:|--:|--:|--:|")
	base := map[string]float64{}
	for _, p := range pgRows {
		name := p.name
		v, ok := r.ns(name, 0)
		if !ok {
			continue
		}
		vs := "—"
		if b, ok := base[p.group]; ok {
			vs = fmt.Sprintf("%+.1f µs (%+.1f%%)", (v-b)/1e3, 100*(v-b)/b)
		} else {
			base[p.group] = v
		}
		allocs := "—"
		if a := r.get("allocs/op", name, 0); a.ok {
			allocs = strconv.FormatFloat(a.center, 'f', -1, 64)
		}
		fmt.Fprintf(out, "| %s | %s | %s | %s | %s | %s | %s |\n",
			p.group, p.name, p.label, formatNs(v/1e3), r.get("sec/op", name, 0).ci, allocs, vs)
	}
}

// formatNs prints a duration (ns, or µs) with three significant figures,
// and no fraction from 100 up.
func formatNs(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

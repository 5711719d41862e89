package main

import (
	"strings"
	"testing"
)

// csvTwoInputs is benchstat -format csv output for two inputs, trimmed.
const csvTwoInputs = `goos: linux
goarch: amd64
pkg: github.com/nexusstore/nexus/bench
cpu: Some CPU
,v1.44.0,,v1.47.0,,,
,sec/op,CI,sec/op,CI,vs base,P
GetHit/serial/map-2,2e-08,3%,2e-08,2%,~,p=0.589 n=6
GetHit/serial/noop-2,2.5e-08,1%,2.5e-08,1%,~,p=0.589 n=6
GetHit/serial/nothing-2,1e-07,2%,1.05e-07,2%,~,p=0.589 n=6
GetHit/serial/otel-2,3e-07,4%,4.5e-07,4%,+50.00%,p=0.002 n=6
GetHit/serial/usual-2,1.025e-06,5%,1.525e-06,5%,+48.78%,p=0.002 n=6
GetHit/parallel/noop-2,1.4e-08,9%,1.4e-08,9%,~,p=0.589 n=6
geomean,1e-07,,1e-07,,+1%,

,v1.44.0,,v1.47.0,,,
,allocs/op,CI,allocs/op,CI,vs base,P
GetHit/serial/usual-2,9,0%,9,0%,~,p=1.000 n=6
geomean,,,,,,
`

func TestParse(t *testing.T) {
	r, err := parse(strings.NewReader(csvTwoInputs))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.groups, " "); got != "v1.44.0 v1.47.0" {
		t.Errorf("groups %q", got)
	}
	if v, ok := r.ns("GetHit/serial/otel", 1); !ok || v != 450 {
		t.Errorf("otel on v1.47.0: %v ns, %v; want 450", v, ok)
	}
	if a := r.get("allocs/op", "GetHit/serial/usual", 0); !a.ok || a.center != 9 {
		t.Errorf("usual allocs: %+v", a)
	}
	if d := r.delta["GetHit/serial/otel"]; len(d) != 1 || d[0] != "+50.00%" {
		t.Errorf("otel delta %q", d)
	}
	// (300-25)/(1025-25) on v1.44.0.
	if x, u, ok := r.added(row{"GetHit", "serial", "otel"}, 0); !ok || x != 275 || u != 1000 {
		t.Errorf("added %v / %v, %v", x, u, ok)
	}
}

func TestTargets(t *testing.T) {
	r, err := parse(strings.NewReader(csvTwoInputs))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	targets(&out, r) // the first input
	for _, want := range []string{
		"FAIL: nexusotel added cost 275 ns = 0.28× the usual way's 1000 ns",
		"PASS: the store's own side (nothing − noop) 75 ns",
		"PASS: parallel no-op hit 14.0 ns/op = 0.56× serial 25.0",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("targets lack %q:\n%s", want, out.String())
		}
	}
}

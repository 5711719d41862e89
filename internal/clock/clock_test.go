package clock

import (
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// within fails unless got is want within a tolerance of tol.
func within(t *testing.T, what string, got, want, tol time.Duration) {
	t.Helper()
	if d := got - want; d < -tol || d > tol {
		t.Errorf("%s = %v, want %v ± %v", what, got, want, tol)
	}
}

func clocks() map[string]*Clock { return map[string]*Clock{"New": New(), "Runtime": Runtime()} }

// Where the kernel keeps time with the TSC, New reads it; elsewhere (or with
// NEXUS_CLOCK=runtime) it reads the runtime's clock.
func TestNewReadsTheCounterWhereTheKernelDoes(t *testing.T) {
	b, err := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource")
	want := runtime.GOOS == "linux" && runtime.GOARCH == "amd64" && err == nil &&
		strings.TrimSpace(string(b)) == "tsc" && os.Getenv("NEXUS_CLOCK") != "runtime"
	if got := New().TSC(); got != want {
		t.Errorf("New().TSC() = %v; want %v (clocksource %q)", got, want, strings.TrimSpace(string(b)))
	}
	if Runtime().TSC() {
		t.Error("Runtime().TSC() = true")
	}
	t.Setenv("NEXUS_CLOCK", "runtime")
	if tscUsable() {
		t.Error("tscUsable() with NEXUS_CLOCK=runtime")
	}
}

// Elapsed agrees with time.Now over sleeps from 1 ms to 50 ms: each
// reading is bracketed by two time.Now calls, so that a goroutine
// descheduled between reads does not fail the test.
func TestElapsedAgreesWithTheRuntimeClock(t *testing.T) {
	for name, c := range clocks() {
		for _, d := range []time.Duration{time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond} {
			a0, r0, b0 := time.Now(), c.Now(), time.Now()
			time.Sleep(d)
			a1, r1, b1 := time.Now(), c.Now(), time.Now()
			got := c.Elapsed(r0, r1)
			// A calibrated rate is off by far less than 0.1%.
			slack := a1.Sub(a0)/1000 + time.Microsecond
			if lo, hi := a1.Sub(b0)-slack, b1.Sub(a0)+slack; got < lo || got > hi {
				t.Errorf("%s: Elapsed over a %v sleep = %v; want within [%v, %v]", name, d, got, lo, hi)
			}
		}
	}
}

// Time gives the wall clock, as time.Now does.
func TestTimeAgreesWithNow(t *testing.T) {
	for name, c := range clocks() {
		for range 3 {
			before := time.Now()
			got := c.Time(c.Now())
			after := time.Now()
			if got.Before(before.Add(-50*time.Microsecond)) || got.After(after.Add(50*time.Microsecond)) {
				t.Errorf("%s Time(Now()) = %v; want between %v and %v", name, got, before, after)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Readings taken before a recalibration keep their meaning after it: the
// durations and times they give move by no more than the clocks' jitter.
func TestRecalibrationKeepsReadings(t *testing.T) {
	c := New()
	if !c.TSC() {
		t.Skip("no time-stamp counter here: nothing is calibrated")
	}
	r0 := c.Now()
	time.Sleep(20 * time.Millisecond)
	r1 := c.Now()
	d, at := c.Elapsed(r0, r1), c.Time(r1)
	old := cal.Load()
	for range 3 {
		time.Sleep(30 * time.Millisecond)
		k := *cal.Load()
		k.renew = 0 // due
		cal.Store(&k)
		c.Now()
		if cal.Load().renew == 0 {
			t.Fatal("Now did not recalibrate a due calibration")
		}
	}
	if rel := float64(cal.Load().mul)/float64(old.mul) - 1; rel > 1e-3 || rel < -1e-3 {
		t.Errorf("the rate moved by %.2g over 90 ms", rel)
	}
	within(t, "Elapsed after recalibrating", c.Elapsed(r0, r1), d, d/1000)
	within(t, "Time after recalibrating", c.Time(r1).Sub(at), 0, 100*time.Microsecond)
}

// A counter that went back (as after a suspend) gives no negative
// duration, and the next reading re-anchors the calibration.
func TestCounterGoingBack(t *testing.T) {
	c := New()
	if !c.TSC() {
		t.Skip("no time-stamp counter here")
	}
	if r := c.Now(); c.Elapsed(r+1000, r) != 0 {
		t.Errorf("Elapsed of an end before its start = %v; want 0", c.Elapsed(r+1000, r))
	}
	k := *cal.Load()
	k.ticks0 += 1 << 50 // the counter now reads below the anchor
	k.renew = k.ticks0 + 1<<40
	cal.Store(&k)
	r := c.Now()
	if got := cal.Load(); got.ticks0 > uint64(r)+1<<20 {
		t.Fatalf("Now did not re-anchor: anchor %d, reading %d", got.ticks0, r)
	}
	before := time.Now()
	got := c.Time(c.Now())
	if got.Before(before.Add(-50*time.Microsecond)) || got.After(time.Now().Add(50*time.Microsecond)) {
		t.Errorf("Time after re-anchoring = %v; want about %v", got, before)
	}
}

// Readings from many goroutines, moved across CPUs, never run backwards
// against each goroutine's own earlier readings.
func TestConcurrentReadings(t *testing.T) {
	c := New()
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range 4 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			prev := c.Now()
			for i := range 20000 {
				r := c.Now()
				if r < prev {
					bad.Add(1)
				}
				prev = r
				if i%100 == 0 {
					runtime.Gosched()
				}
			}
		})
	}
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Errorf("%d readings ran backwards", n)
	}
}

// Inside a synctest bubble a Clock follows the bubble's fake time, as
// time.Now does there.
func TestSynctestBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New()
		if c.TSC() {
			t.Fatal("New() in a bubble reads the counter")
		}
		r0 := c.Now()
		time.Sleep(25 * time.Millisecond)
		r1 := c.Now()
		if d := c.Elapsed(r0, r1); d != 25*time.Millisecond {
			t.Errorf("Elapsed over a fake 25ms = %v", d)
		}
		if got := c.Time(r1); !got.Equal(time.Now()) {
			t.Errorf("Time = %v; want the bubble's %v", got, time.Now())
		}
	})
}

func TestCounting(t *testing.T) {
	var n atomic.Int64
	c := New().Counting(&n)
	c.Now()
	c.Now()
	if n.Load() != 2 {
		t.Errorf("counted %d reads; want 2", n.Load())
	}
}

func TestRate(t *testing.T) {
	for _, tc := range []struct {
		t0, t1 uint64
		m0, m1 int64
		ok     bool
		want   uint64
	}{
		{0, 3000, 0, 1000, true, 1 << 32 / 3},           // 3 GHz
		{100, 100, 0, 1000, false, 0},                   // the counter stood still
		{0, 1000, 5, 5, false, 0},                       // the runtime's clock stood still
		{200, 100, 0, 1000, false, 0},                   // the counter went back
		{0, 10, 0, 1 << 40, false, 0},                   // under a tick per 2³² ns
		{0, 3 << 40, 0, 1 << 40, true, 1 << 32 / 3},     // long intervals: no overflow
		{0, 1 << 62, 0, 1 << 62 / 3, true, 1 << 32 / 3}, // rounding down
	} {
		got, ok := rate(tc.t0, tc.m0, tc.t1, tc.m1)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("rate(%d, %d, %d, %d) = %d, %v; want %d, %v", tc.t0, tc.m0, tc.t1, tc.m1, got, ok, tc.want, tc.ok)
		}
	}
	if got := scale(3000, 1<<32/3); got != 999 && got != 1000 {
		t.Errorf("scale(3000 ticks at 3 GHz) = %d ns", got)
	}
	if got := ticksIn(time.Second, 1<<32/3); got < 3_000_000_000 || got > 3_000_000_010 {
		t.Errorf("ticksIn(1s at 3 GHz) = %d", got)
	}
}

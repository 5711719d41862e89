// Package clock times operations with a monotonic clock that costs little
// to read.
//
// A Clock reads either the runtime's monotonic clock (what time.Since
// reads) or, where the hardware and the kernel allow it, the CPU's
// time-stamp counter: on linux/amd64 whose kernel keeps time with the TSC
// (it does so only once it found the counter invariant and synchronized
// across CPUs), RDTSC costs about a third of the runtime's clock (10 ns
// against 25 ns on the 2-core VM of docs/performance.md), whose vDSO call
// switches stacks. Counter readings become nanoseconds at a rate
// calibrated against the runtime's monotonic clock when the first such
// Clock is made, and measured again over each following second, so that
// they follow the runtime's clock (and its NTP slewing) instead of
// drifting from it.
//
// A Clock made inside a testing/synctest bubble reads the bubble's fake
// clock, as time.Now does there: New notices a clock that does not advance
// while it waits, and returns a runtime Clock.
//
// Readings of one Clock are only meaningful to that Clock.
package clock

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
	_ "unsafe" // go:linkname
)

// nanotime is the runtime's monotonic clock, outside any synctest bubble
// too (time.Since follows the bubble's clock there).
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// Reading is a raw clock reading: counter ticks or nanoseconds, depending
// on the Clock that took it.
type Reading uint64

// Clock reads the clock and turns readings into durations and times.
type Clock struct {
	tsc   bool          // readings are counter ticks
	base  time.Time     // runtime readings are the nanoseconds since base
	wall  int64         // base as Unix nanoseconds
	reads *atomic.Int64 // counts Now calls when not nil (Counting)
}

// New returns a Clock: a counter Clock where the counter can be used (the
// first one made calibrates it, in about 200 µs), else a runtime Clock.
func New() *Clock {
	if fake() {
		return Runtime()
	}
	detect.Do(func() { useTSC = tscUsable() && calibrate() })
	if !useTSC {
		return Runtime()
	}
	return &Clock{tsc: true}
}

// Runtime returns a Clock that reads the runtime's monotonic clock, as
// time.Since does (inside a synctest bubble, the bubble's clock).
func Runtime() *Clock {
	now := time.Now()
	return &Clock{base: now, wall: now.UnixNano()}
}

// fake reports whether time.Now is a synctest bubble's: time that stands
// still while this goroutine waits 2 µs of real time.
func fake() bool {
	a := time.Since(procBase)
	for n := nanotime(); nanotime()-n < 2000; {
	}
	return time.Since(procBase) == a
}

// TSC reports whether the Clock reads the time-stamp counter.
func (c *Clock) TSC() bool { return c.tsc }

// Counting returns a copy of c that adds 1 to n on each Now: for tests that
// prove a path reads no clock.
func (c *Clock) Counting(n *atomic.Int64) *Clock {
	cc := *c
	cc.reads = n
	return &cc
}

// Now reads the clock.
func (c *Clock) Now() Reading {
	if c.reads != nil {
		c.reads.Add(1)
	}
	if c.tsc {
		t := rdtsc()
		if k := cal.Load(); t >= k.renew || t < k.ticks0 {
			recalibrate(t)
		}
		return Reading(t)
	}
	return Reading(time.Since(c.base))
}

// Elapsed returns the time from start to end, readings of c; never
// negative (a counter that went back, after a suspend, gives 0).
func (c *Clock) Elapsed(start, end Reading) time.Duration {
	if end <= start {
		return 0
	}
	if !c.tsc {
		return time.Duration(end - start)
	}
	return time.Duration(scale(uint64(end-start), cal.Load().mul))
}

// Time returns the wall-clock time of a reading of c: a wall-clock time
// read once plus the monotonic time since, as time.Now().Add would give.
// It is in the Local location and carries no monotonic clock reading (as
// after Round(0)): building one costs twice as much.
func (c *Clock) Time(r Reading) time.Time {
	if !c.tsc {
		return time.Unix(0, c.wall+int64(r))
	}
	k := cal.Load()
	if uint64(r) >= k.ticks0 {
		return time.Unix(0, k.unix0+int64(scale(uint64(r)-k.ticks0, k.mul)))
	}
	return time.Unix(0, k.unix0-int64(scale(k.ticks0-uint64(r), k.mul)))
}

// calibration maps counter ticks to the runtime's monotonic clock: the
// tick reading ticks0 was taken with the runtime's clock at mono0, the
// wall clock at unix0, and a tick lasts mul/2³² nanoseconds. It is
// immutable: a new rate is a new calibration.
type calibration struct {
	ticks0 uint64
	mono0  int64 // nanotime
	unix0  int64 // Unix nanoseconds
	mul    uint64
	renew  uint64 // the tick reading after which the rate is measured again
}

var (
	// procBase and procNano are the wall clock and the runtime's clock,
	// read together when the package is initialized (never in a bubble).
	procBase = time.Now()
	procNano = nanotime()

	detect   sync.Once
	useTSC   bool
	cal      atomic.Pointer[calibration]
	renewing atomic.Bool
)

// every is how long a measured rate is used before it is measured again.
const every = time.Second

// scale returns ticks·mul/2³², the nanoseconds of ticks.
func scale(ticks, mul uint64) uint64 {
	hi, lo := bits.Mul64(ticks, mul)
	return hi<<32 | lo>>32
}

// pair reads the counter and the runtime's clock as close together as it
// can: of a few tries, the one with the shortest counter interval around
// the runtime's read.
func pair() (ticks uint64, mono int64) {
	best := ^uint64(0)
	for range 5 {
		a := rdtsc()
		m := nanotime()
		b := rdtsc()
		if b > a && b-a < best {
			best, ticks, mono = b-a, a+(b-a)/2, m
		}
	}
	return ticks, mono
}

// rate returns the tick length, as mul, from two pairs; false if the
// clocks disagree (one did not advance, or advanced less than a tick per
// 2³² ns).
func rate(t0 uint64, m0 int64, t1 uint64, m1 int64) (uint64, bool) {
	if t1 <= t0 || m1 <= m0 {
		return 0, false
	}
	ns, ticks := uint64(m1-m0), t1-t0
	if ticks <= ns>>32 {
		return 0, false
	}
	q, _ := bits.Div64(ns>>32, ns<<32, ticks)
	return q, q > 0
}

// ticksIn returns how many ticks last d at rate mul.
func ticksIn(d time.Duration, mul uint64) uint64 {
	if uint64(d)>>32 >= mul {
		return ^uint64(0)
	}
	q, _ := bits.Div64(uint64(d)>>32, uint64(d)<<32, mul)
	return q
}

func newCalibration(ticks0 uint64, mono0 int64, mul uint64) *calibration {
	return &calibration{
		ticks0: ticks0, mono0: mono0, mul: mul,
		unix0: procBase.UnixNano() + (mono0 - procNano),
		renew: ticks0 + ticksIn(every, mul),
	}
}

// calibrate measures the first rate over about 200 µs; false if the
// clocks disagree.
func calibrate() bool {
	t0, m0 := pair()
	for nanotime() < m0+200_000 {
	}
	t1, m1 := pair()
	mul, ok := rate(t0, m0, t1, m1)
	if ok {
		cal.Store(newCalibration(t1, m1, mul))
	}
	return ok
}

// recalibrate measures the rate again over the time since the last
// calibration and starts the next period from now. One caller does it;
// the others go on with the calibration in force.
func recalibrate(t uint64) {
	if !renewing.CompareAndSwap(false, true) {
		return
	}
	defer renewing.Store(false)
	k := cal.Load()
	if t < k.renew && t >= k.ticks0 {
		return // another caller just did it
	}
	t1, m1 := pair()
	mul, ok := rate(k.ticks0, k.mono0, t1, m1)
	if !ok {
		// The counter went back (a suspend can reset it) or the clocks
		// disagree: keep the rate, start a new period from here.
		mul = k.mul
	}
	cal.Store(newCalibration(t1, m1, mul))
}

package clock

import (
	"bytes"
	"os"
)

// rdtsc returns the CPU's time-stamp counter (RDTSC, not serializing).
func rdtsc() uint64

// tscUsable reports whether the kernel keeps time with the time-stamp
// counter, which it does only once it found the counter invariant and
// synchronized across CPUs. NEXUS_CLOCK=runtime turns the counter off.
func tscUsable() bool {
	if os.Getenv("NEXUS_CLOCK") == "runtime" {
		return false
	}
	b, err := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource")
	return err == nil && bytes.Equal(bytes.TrimSpace(b), []byte("tsc"))
}

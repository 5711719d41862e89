//go:build !(linux && amd64)

package clock

func rdtsc() uint64 { panic("clock: no time-stamp counter on this platform") }

func tscUsable() bool { return false }

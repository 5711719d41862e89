package reporters

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// roundDuration rounds d to three significant digits (2.134ms to 2.13ms,
// 15.02ms to 15ms), enough to read a log line without a wall of digits.
func roundDuration(d time.Duration) time.Duration {
	if d < 0 {
		if d == -d { // math.MinInt64
			return d
		}
		return -roundDuration(-d)
	}
	unit := time.Duration(1)
	for d/unit >= 1000 {
		unit *= 10
	}
	return d.Round(unit)
}

// appendDuration appends d rounded to three significant digits in the unit
// time.Duration.String would use ("850µs", "2.1ms", "15ms", "1.5s"),
// without allocating below a minute.
func appendDuration(b []byte, d time.Duration) []byte {
	d = roundDuration(d)
	switch {
	case d == 0:
		return append(b, "0s"...)
	case d < 0 || d >= time.Minute:
		return append(b, d.String()...)
	case d < time.Microsecond:
		return appendUnit(b, d, time.Nanosecond, "ns")
	case d < time.Millisecond:
		return appendUnit(b, d, time.Microsecond, "µs")
	case d < time.Second:
		return appendUnit(b, d, time.Millisecond, "ms")
	}
	return appendUnit(b, d, time.Second, "s")
}

// appendUnit appends d/unit as a decimal without trailing zeros, then
// suffix. unit is a power of ten nanoseconds.
func appendUnit(b []byte, d, unit time.Duration, suffix string) []byte {
	b = strconv.AppendInt(b, int64(d/unit), 10)
	if frac := d % unit; frac != 0 {
		b = append(b, '.')
		for unit /= 10; frac != 0; unit /= 10 {
			b = append(b, byte('0'+frac/unit))
			frac %= unit
		}
	}
	return append(b, suffix...)
}

// appendID appends an item ID: strings and integers directly, anything else
// as fmt's %v prints it.
func appendID(b []byte, id any) []byte {
	switch v := id.(type) {
	case string:
		return appendText(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case int32:
		return strconv.AppendInt(b, int64(v), 10)
	case uint:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint64:
		return strconv.AppendUint(b, v, 10)
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10)
	case fmt.Stringer:
		return appendText(b, v.String())
	}
	return appendText(b, fmt.Sprint(id))
}

// appendText appends s as it is, or quoted with Go escapes (as %q and
// slog's text handler do) when it holds a control character, a character
// that is not printable, or invalid UTF-8: an ID, a tag or an error message
// must not break a line or forge another one.
func appendText(b []byte, s string) []byte {
	if needsQuote(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

func needsQuote(s string) bool {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}

// sampled reports whether rate is a sampling rate below 1 (0 and values of
// 1 or more mean that every metric is reported).
func sampled(rate float64) bool { return rate > 0 && rate < 1 }

// appendSampleRate appends "1/N", N being 1/rate to three significant
// digits ("1/10", "1/3.33", "1/1000").
func appendSampleRate(b []byte, rate float64) []byte {
	b = append(b, "1/"...)
	n := 1 / rate
	if e := math.Floor(math.Log10(n)) - 2; e < 0 {
		p := math.Pow(10, -e) // divide by an exact power of ten: 333/100 is 3.33
		n = math.Round(n*p) / p
	} else {
		p := math.Pow(10, e)
		n = math.Round(n/p) * p
	}
	return strconv.AppendFloat(b, n, 'f', -1, 64)
}

func appendInt(b []byte, n int) []byte { return strconv.AppendInt(b, int64(n), 10) }

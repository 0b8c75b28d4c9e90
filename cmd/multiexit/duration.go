//go:build unix

package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// forever is the longest duration multiexit keeps: about 36 years,
// practically never, and small enough that the sums of durations multiexit
// and its library make cannot overflow.
const forever = time.Duration(1 << 60)

// durationFlag is a duration as GNU timeout reads one, a floating-point
// number of seconds with an optional suffix s, m, h or d (90, 1.5m,
// 2.34e+5d), or a Go duration (1m30s, 500ms). It may not be negative.
type durationFlag time.Duration

func (d *durationFlag) String() string { return time.Duration(*d).String() }

func (d *durationFlag) Set(s string) error {
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = durationFlag(v)
	return nil
}

// parseDuration reads s (see durationFlag). As GNU timeout does, it takes a
// duration too long to represent as practically never (forever, also past
// what Go's time.Duration holds: 9223372036854775808, 5616000h, 1e400) and
// a positive one shorter than a nanosecond as a nanosecond (1e-10 fires at
// once; only a zero duration is none).
func parseDuration(s string) (time.Duration, error) {
	secs, err := gnuSeconds(s)
	if err != nil {
		secs, err = goSeconds(s)
	}
	switch {
	case err != nil || math.IsNaN(secs):
		return 0, fmt.Errorf("not a duration (say 90, 90s, 1.5m, 1m30s or 2d): %q", s)
	case secs < 0:
		return 0, fmt.Errorf("negative duration %q", s)
	case secs == 0 && !strings.ContainsAny(mantissa(s), "123456789abcdef"):
		return 0, nil
	case secs*1e9 >= float64(forever):
		return forever, nil
	case secs*1e9 < 1:
		return time.Nanosecond, nil // a positive duration, even one that underflowed (1e-5000)
	}
	return time.Duration(secs * 1e9), nil
}

// gnuSeconds reads s as GNU timeout does: a floating-point number with an
// optional suffix s, m, h or d. A number past float64's range is ±Inf.
func gnuSeconds(s string) (float64, error) {
	unit := 1.0
	if n := len(s); n > 1 {
		if u, ok := map[byte]float64{'s': 1, 'm': 60, 'h': 3600, 'd': 86400}[s[n-1]]; ok {
			s, unit = s[:n-1], u
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if errors.Is(err, strconv.ErrRange) {
		err = nil // ±Inf, or 0 for an underflow
	}
	return f * unit, err
}

// goSeconds reads s as time.ParseDuration does (a sequence of decimal
// numbers, each with a unit: 1h30m, 1.5s, 300ms), in floating point, so
// that a duration too long for time.Duration is not an error.
func goSeconds(s string) (float64, error) {
	units := []struct {
		name string
		secs float64
	}{{"ns", 1e-9}, {"us", 1e-6}, {"µs", 1e-6}, {"μs", 1e-6}, {"ms", 1e-3}, {"s", 1}, {"m", 60}, {"h", 3600}}
	sign, rest := 1.0, s
	if r, ok := strings.CutPrefix(rest, "-"); ok {
		sign, rest = -1, r
	} else {
		rest = strings.TrimPrefix(rest, "+")
	}
	if rest == "" {
		return 0, errors.New("empty")
	}
	total := 0.0
	for rest != "" {
		i := strings.IndexFunc(rest, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		if i <= 0 {
			return 0, errors.New("no number")
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, err
		}
		rest = rest[i:]
		found := false
		for _, u := range units { // "ms" before "m"
			if strings.HasPrefix(rest, u.name) {
				total += n * u.secs
				rest = rest[len(u.name):]
				found = true
				break
			}
		}
		if !found {
			return 0, errors.New("no unit")
		}
	}
	return sign * total, nil
}

// mantissa is the digits of s before any exponent.
func mantissa(s string) string {
	s = strings.ToLower(s)
	if strings.HasPrefix(strings.TrimLeft(s, "+-"), "0x") {
		s, _, _ = strings.Cut(s, "p")
		return strings.TrimPrefix(strings.TrimLeft(s, "+-"), "0x")
	}
	s, _, _ = strings.Cut(s, "e")
	return s
}

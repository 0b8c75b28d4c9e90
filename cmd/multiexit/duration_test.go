//go:build unix

package main

import (
	"testing"
	"time"
)

// Durations as GNU timeout reads them (floating seconds, a suffix s, m, h
// or d), Go's (1m30s), and the edges: too long for time.Duration is
// forever, a positive one below a nanosecond is a nanosecond, only zero is
// none.
func TestParseDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"90", 90 * time.Second},
		{"90s", 90 * time.Second},
		{"1.5m", 90 * time.Second},
		{"2h", 2 * time.Hour},
		{"1d", 24 * time.Hour},
		{".5", 500 * time.Millisecond},
		{"10.34", 10340 * time.Millisecond},
		{"9.999999999", 9999999999},
		{"1m30s", 90 * time.Second},
		{"500ms", 500 * time.Millisecond},
		{"1h2m3.5s", time.Hour + 2*time.Minute + 3500*time.Millisecond},
		{"250us", 250 * time.Microsecond},
		{"0", 0},
		{"0s", 0},
		{"0.000", 0},
		{"1e-10", time.Nanosecond},
		{"1e-5000", time.Nanosecond},
		{"9223372036854775808", forever},
		{"9223372036854775808d", forever},
		{"5616000h", forever},
		{"2.34e+5d", forever},
		{"1.18973149535723176502e+4932", forever},
		{"inf", forever},
		{"300000h", 300000 * time.Hour}, // 34 years: within forever
	} {
		got, err := parseDuration(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "soon", "42D", "1x", "-1", "-1s", "-1.18973149535723176502e+4932", "nan", "1..5", "h", "1h-2m"} {
		if got, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", bad, got)
		}
	}
}

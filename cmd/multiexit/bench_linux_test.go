package main_test

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkWrappingCost runs `true` bare, under tini and dumb-init, and
// under multiexit on each containment layer, one after another in each
// round (alternated, so that a change of the machine's load hits every
// variant alike), and reports each variant's mean wall time and its peak
// resident memory (the largest of the wrapper and what it waited for,
// from GNU time).
//
//	go test -run - -bench WrappingCost -benchtime 300x ./cmd/multiexit/
//
// The tool is built with -race when the benchmark is: run it without.
func BenchmarkWrappingCost(b *testing.B) {
	type variant struct {
		name string
		args []string
		env  []string
	}
	vs := []variant{
		{"bare", []string{"true"}, nil},
		{"tini", []string{"tini", "-s", "--", "true"}, nil},
		{"dumb-init", []string{"dumb-init", "true"}, nil},
		{"multiexit", []string{bin, "--", "true"}, nil},
		{"multiexit-subreaper", []string{bin, "--", "true"}, []string{"MULTIEXIT_CONTAINMENT=subreaper"}},
		{"multiexit-pgroup", []string{bin, "--", "true"}, []string{"MULTIEXIT_CONTAINMENT=process-group"}},
	}
	var have []variant
	for _, v := range vs {
		if _, err := exec.LookPath(v.args[0]); err == nil {
			have = append(have, v)
		} else {
			b.Logf("%s: not installed (apt-get install -y tini dumb-init)", v.args[0])
		}
	}
	wall := make([]time.Duration, len(have))
	for i := 0; b.Loop(); i++ {
		for k := range have {
			j := (i + k) % len(have) // each round starts with another variant
			v := have[j]
			cmd := exec.Command(v.args[0], v.args[1:]...)
			cmd.Env = append(os.Environ(), v.env...)
			start := time.Now()
			if err := cmd.Run(); err != nil {
				b.Fatalf("%s: %v", v.name, err)
			}
			wall[j] += time.Since(start)
		}
	}
	b.StopTimer()
	for j, v := range have {
		b.ReportMetric(float64(wall[j].Microseconds())/float64(b.N), v.name+"-µs/run")
		if kib := peakRSS(b, v.args, v.env); kib > 0 {
			b.ReportMetric(float64(kib), v.name+"-maxrss-KiB")
		}
	}
}

// peakRSS is the largest resident set of args and what it waited for, over
// a few runs, as GNU time (/usr/bin/time) reports it; 0 without it. It is
// measured apart from the wall time: the rusage of a child of this Go test
// process would count the test's own pages, copied at fork.
func peakRSS(b *testing.B, args, env []string) int64 {
	var peak int64
	for range 5 {
		cmd := exec.Command("/usr/bin/time", append([]string{"-f", "%M"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Logf("/usr/bin/time %v: %v", args, err)
			return 0
		}
		f := strings.Fields(string(out))
		kib, err := strconv.ParseInt(f[len(f)-1], 10, 64)
		if err != nil {
			return 0
		}
		peak = max(peak, kib)
	}
	return peak
}

package main_test

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// BenchmarkWrappingCost runs `true` bare, under tini and dumb-init, and
// under multiexit on each containment layer, one after another in each
// round (alternated, so that a change of the machine's load hits every
// variant alike), and reports each variant's mean wall time and its peak
// resident memory (the largest of the wrapper and what it waited for).
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
	rss := make([]int64, len(have))
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
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				rss[j] = max(rss[j], ru.Maxrss)
			}
		}
	}
	for j, v := range have {
		b.ReportMetric(float64(wall[j].Microseconds())/float64(b.N), v.name+"-µs/run")
		b.ReportMetric(float64(rss[j]), v.name+"-maxrss-KiB")
	}
}

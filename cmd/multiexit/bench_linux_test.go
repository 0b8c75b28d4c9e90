package main_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiexit/multiexit/internal/proctest"
)

// BenchmarkWrappingCost runs `true` bare, under tini and dumb-init, under
// the Go floor (testdata/gofloor: os/exec and signal.Notify, built
// static), and under multiexit on each containment layer, one after
// another in each round (alternated, so that a change of the machine's
// load hits every variant alike), and reports each variant's mean wall
// time, its ratio to tini's and to the Go floor's, and its peak resident
// memory (the largest of the wrapper and what it waited for, from GNU
// time).
//
//	go test -run - -bench WrappingCost -benchtime 300x ./cmd/multiexit/
//
// The tool is built with -race when the benchmark is: run it without.
func BenchmarkWrappingCost(b *testing.B) {
	floor := filepath.Join(b.TempDir(), "gofloor")
	build := exec.Command("go", "build", "-o", floor, "./testdata/gofloor")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building the Go floor: %v\n%s", err, out)
	}
	type variant struct {
		name string
		args []string
		env  []string
	}
	vs := []variant{
		{"bare", []string{"true"}, nil},
		{"tini", []string{"tini", "-s", "--", "true"}, nil},
		{"dumb-init", []string{"dumb-init", "true"}, nil},
		{"go-floor", []string{floor, "true"}, nil},
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
	of := func(name string) time.Duration {
		for j, v := range have {
			if v.name == name {
				return wall[j]
			}
		}
		return 0
	}
	for j, v := range have {
		b.ReportMetric(float64(wall[j].Microseconds())/float64(b.N), v.name+"-µs/run")
		if t := of("tini"); t > 0 && strings.HasPrefix(v.name, "multiexit") {
			b.ReportMetric(float64(wall[j])/float64(t), v.name+"/tini")
		}
		if f := of("go-floor"); strings.HasPrefix(v.name, "multiexit") {
			b.ReportMetric(float64(wall[j])/float64(f), v.name+"/go-floor")
		}
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

// BenchmarkStopTree: COMMAND starts 1000 processes, half of them in its
// process group and half in sessions of their own (escapees), then exits;
// the time is from its exit (the line that ends it is written) until the
// wrapper has returned. Under multiexit nothing is left then; tini -g -s
// returns at once and leaves every one of them running, which the
// benchmark counts (and kills, by PID).
//
//	go test -run - -bench StopTree -benchtime 3x ./cmd/multiexit/
func BenchmarkStopTree(b *testing.B) {
	const half = 500
	script := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do sleep 1000 & setsid sleep 1000 & i=$((i+1)); done; echo ready; read _`, half)
	for _, w := range []struct{ name, prog string }{{"multiexit", bin}, {"tini", "tini"}} {
		if _, err := exec.LookPath(w.prog); err != nil {
			continue
		}
		b.Run(w.name, func(b *testing.B) {
			var left int
			for b.Loop() {
				b.StopTimer()
				tag := fmt.Sprintf("stoptree-%d-%d", os.Getpid(), time.Now().UnixNano())
				args := []string{"-grace", "5s", "--", "sh", "-c", script}
				if w.name == "tini" {
					args = []string{"-g", "-s", "--", "sh", "-c", script}
				}
				cmd := exec.Command(w.prog, args...)
				cmd.Env = append(os.Environ(), proctest.Env(tag))
				in, _ := cmd.StdinPipe()
				out, _ := cmd.StdoutPipe()
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				sc := bufio.NewScanner(out)
				if !sc.Scan() || sc.Text() != "ready" {
					b.Fatalf("%s: no ready line", w.name)
				}
				b.StartTimer()
				in.Write([]byte("go\n"))
				cmd.Wait()
				b.StopTimer()
				survivors := proctest.Survivors(tag)
				left += len(survivors)
				for _, p := range survivors {
					syscall.Kill(p.PID, syscall.SIGKILL)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(left)/float64(b.N), "left-alive/op")
		})
	}
}

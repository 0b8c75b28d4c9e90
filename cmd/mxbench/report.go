//go:build linux

package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Targets, as ratios multiexit/floor measured in one run, and limits.
const (
	startTarget  = 1.10
	stopTarget   = 1.10
	memPerChild  = 16 << 10 // bytes of the parent per tracked child
	fdsPerWorker = 3
	// multiexit's stop against Python multiexit's (Python/multiexit)
	pythonStopTarget = 1.5
)

// targetSizes are the N at which the latency ratios are targets.
var targetSizes = []int{64, 256}

type phase struct {
	name   string
	get    func(sample) time.Duration
	target float64
}

var phases = []phase{
	{"launch to all ready", func(s sample) time.Duration { return s.start }, startTarget},
	{"SIGTERM to nothing left", func(s sample) time.Duration { return s.stop }, stopTarget},
}

func durations(ss []sample, get func(sample) time.Duration) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = ms(get(s))
	}
	return out
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// pairedRatio is the median of the ratios of trials run side by side.
func pairedRatio(mx, floor []float64) float64 {
	var rs []float64
	for i := range min(len(mx), len(floor)) {
		rs = append(rs, mx[i]/floor[i])
	}
	return median(rs)
}

// slope fits y = a + b·x by least squares and returns b.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func report(w io.Writer, sizes []int, res map[string]map[int][]sample) {
	floor, mx := res["floor"], res["multiexit"]
	reps := len(floor[sizes[0]])
	fmt.Fprintf(w, "Latency in ms: median (min–max) of %d trials; ratio = multiexit/floor of the medians; paired = median of the ratios of trials run side by side.\n\n", reps)
	fmt.Fprintln(w, "| N | phase | floor | multiexit | ratio | paired | target |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---|")
	var verdicts []string
	for _, n := range sizes {
		for _, ph := range phases {
			f, m := durations(floor[n], ph.get), durations(mx[n], ph.get)
			ratio := median(m) / median(f)
			target := ""
			if slices.Contains(targetSizes, n) {
				target = fmt.Sprintf("≤ %.2f: %s", ph.target, verdict(ratio <= ph.target))
				verdicts = append(verdicts, fmt.Sprintf("%s at N=%d: %.2fx the floor (target ≤ %.2fx): %s", ph.name, n, ratio, ph.target, verdict(ratio <= ph.target)))
			}
			fmt.Fprintf(w, "| %d | %s | %s | %s | %.2f | %.2f | %s |\n", n, ph.name, spread(f), spread(m), ratio, pairedRatio(m, f), target)
		}
	}

	fmt.Fprintf(w, "\nCost per child in ms (median / N): linear cost keeps these flat as N grows.\n\n")
	fmt.Fprintln(w, "| N | ready, floor | ready, multiexit | gone, floor | gone, multiexit |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|")
	for _, n := range sizes {
		fmt.Fprintf(w, "| %d", n)
		for _, ph := range phases {
			for _, im := range impls {
				fmt.Fprintf(w, " | %.2f", median(durations(res[im.name][n], ph.get))/float64(n))
			}
		}
		fmt.Fprintln(w, " |")
	}

	fmt.Fprintf(w, "\nWork, per child (medians): CPU time of the whole tree from launch to all ready (start: only where each trial has a cgroup), and from SIGTERM to the end (stop); minor page faults of the stop.\n\n")
	fmt.Fprintln(w, "| N | start CPU, floor | multiexit | ratio | stop CPU, floor | multiexit | ratio | faults, floor | multiexit |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, n := range sizes {
		per := func(ss []sample, get func(sample) float64) float64 {
			return median(mapf(ss, get)) / float64(n)
		}
		fmt.Fprintf(w, "| %d", n)
		for _, get := range []func(sample) float64{
			func(s sample) float64 { return ms(s.startCPU) },
			func(s sample) float64 { return ms(s.stopCPU) },
		} {
			f, m := per(floor[n], get), per(mx[n], get)
			if f == 0 {
				fmt.Fprint(w, " | n/a | n/a | n/a")
				continue
			}
			fmt.Fprintf(w, " | %.2f ms | %.2f ms | %.2f", f, m, m/f)
		}
		flt := func(s sample) float64 { return float64(s.stopFaults) }
		fmt.Fprintf(w, " | %.0f | %.0f |\n", per(floor[n], flt), per(mx[n], flt))
	}

	fmt.Fprintf(w, "\nThe pool's parent with its children running (medians): resident memory as it runs, resident memory after a collection that returned freed memory (runtime/debug.FreeOSMemory), Go heap in use plus goroutine stacks after it, threads, open descriptors.\n\n")
	fmt.Fprintln(w, "| N | pool | RSS | RSS after GC | Go heap+stacks | threads | fds |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|")
	type measure struct {
		name string
		get  func(sample) float64
	}
	measures := []measure{
		{"RSS", func(s sample) float64 { return float64(s.rss) }},
		{"RSS after GC", func(s sample) float64 { return float64(s.rssGC) }},
		{"Go heap+stacks", func(s sample) float64 { return float64(s.goMem) }},
		{"threads", func(s sample) float64 { return float64(s.threads) }},
		{"descriptors", func(s sample) float64 { return float64(s.fds) }},
	}
	for _, n := range sizes {
		for _, im := range impls {
			var v [5]float64
			for i, m := range measures {
				v[i] = median(mapf(res[im.name][n], m.get))
			}
			fmt.Fprintf(w, "| %d | %s | %.1f MiB | %.1f MiB | %.0f KiB | %.0f | %.0f |\n", n, im.name, v[0]/(1<<20), v[1]/(1<<20), v[2]/1024, v[3], v[4])
		}
	}
	// Per child: the least-squares slope of each median over N.
	per := map[string][]float64{}
	for _, im := range impls {
		var xs []float64
		for _, n := range sizes {
			xs = append(xs, float64(n))
		}
		for _, m := range measures {
			var ys []float64
			for _, n := range sizes {
				ys = append(ys, median(mapf(res[im.name][n], m.get)))
			}
			per[im.name] = append(per[im.name], slope(xs, ys))
		}
	}
	fmt.Fprintf(w, "\nPer child (least-squares slope over N):\n\n")
	fmt.Fprintln(w, "| pool | RSS | RSS after GC | Go heap+stacks | threads | descriptors |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, im := range impls {
		p := per[im.name]
		fmt.Fprintf(w, "| %s | %.1f KiB | %.1f KiB | %.1f KiB | %.2f | %.2f |\n", im.name, p[0]/1024, p[1]/1024, p[2]/1024, p[3], p[4])
	}

	mem := per["multiexit"][1]
	verdicts = append(verdicts,
		fmt.Sprintf("parent memory per tracked child (RSS after GC): %.1f KiB (target ≤ %d KiB): %s; as it runs %.1f KiB, Go heap+stacks %.1f KiB",
			mem/1024, memPerChild>>10, verdict(mem <= memPerChild), per["multiexit"][0]/1024, per["multiexit"][2]/1024),
		fmt.Sprintf("descriptors per worker in the parent: %.2f (target ≤ %d): %s", per["multiexit"][4], fdsPerWorker, verdict(per["multiexit"][4] <= fdsPerWorker+0.05)))
	if len(sizes) > 1 {
		lo, hi := sizes[0], sizes[len(sizes)-1]
		for _, ph := range phases {
			var parts []string
			for _, im := range impls {
				a := median(durations(res[im.name][lo], ph.get)) / float64(lo)
				b := median(durations(res[im.name][hi], ph.get)) / float64(hi)
				parts = append(parts, fmt.Sprintf("%s %.2f", im.name, b/a))
			}
			verdicts = append(verdicts, fmt.Sprintf("linearity, %s: cost per child at N=%d over N=%d: %s", ph.name, hi, lo, strings.Join(parts, ", ")))
		}
	}
	fmt.Fprintln(w, "\nTargets:")
	for _, v := range verdicts {
		fmt.Fprintln(w, "- "+v)
	}
}

func mapf(ss []sample, f func(sample) float64) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

func spread(xs []float64) string {
	return fmt.Sprintf("%.1f (%.1f–%.1f)", median(xs), slices.Min(xs), slices.Max(xs))
}

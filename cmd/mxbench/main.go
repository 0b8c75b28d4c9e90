//go:build linux

package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// impl is one of the two pools.
type impl struct {
	name string // as printed
	role string // its parent's role
}

var impls = []impl{{"floor", "floor-parent"}, {"multiexit", "multiexit-parent"}}

// sample is one trial of one pool at one N.
type sample struct {
	start, stop time.Duration
	rss         int64 // the parent's VmRSS in bytes, children running
	rssGC       int64 // the same after a collection that returned freed memory
	goMem       int64 // the parent's Go heap in use and goroutine stacks, after that collection
	threads     int   // the parent's threads
	fds         int   // the parent's open descriptors
	// From launch to all ready, the whole tree's CPU time (only where
	// the trial has a cgroup, see cpuMeter; else 0).
	startCPU time.Duration
	// From SIGTERM to the end, the whole tree: CPU time (see cpuMeter)
	// and minor page faults (the parent's rusage, which counts the
	// children it reaped, less what every process had used before).
	stopCPU    time.Duration
	stopFaults int64
}

func main() {
	if role() {
		return
	}
	reps := flag.Int("n", 5, "trials of each pool at each N")
	sizesFlag := flag.String("sizes", "8,64,256", "comma-separated numbers of children")
	big := flag.Bool("big", false, "also measure N=1024")
	svgPath := flag.String("svg", "", "write an SVG plot of latency against N to this file")
	settle := flag.Duration("settle", 200*time.Millisecond, "pause between all ready and SIGTERM")
	verbose := flag.Bool("v", false, "print every trial")
	python := flag.String("python", "", "also measure Python's multiexit with this interpreter (it must import multiexit)")
	flag.Parse()

	sizes, err := parseSizes(*sizesFlag)
	if err != nil {
		fatal(err)
	}
	if *big && !slices.Contains(sizes, 1024) {
		sizes = append(sizes, 1024)
	}
	slices.Sort(sizes)
	exe, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	os.Unsetenv("MULTIEXIT")
	pools := impls
	if *python != "" {
		if err := checkPython(*python); err != nil {
			fatal(err)
		}
		pools = append(slices.Clone(impls), impl{"python", pythonRole})
		pythonPath = *python
	}

	fmt.Printf("mxbench: %d trials of each pool at N = %v, in turns; %s\n", *reps, sizes, machine())
	fmt.Printf("CPU time of a stop counted from %s\n\n", newCPUMeterProbe())

	// One untimed trial of each first: the binary and the log directory
	// are then warm for both.
	for _, im := range pools {
		if _, err := trial(exe, im, sizes[0], *settle); err != nil {
			fatal(fmt.Errorf("warm-up %s: %w", im.name, err))
		}
	}
	res := map[string]map[int][]sample{}
	for _, im := range pools {
		res[im.name] = map[int][]sample{}
	}
	for r := range *reps {
		for i, n := range sizes {
			// In turns: each round starts with another pool.
			k := (r + i) % len(pools)
			order := append(slices.Clone(pools[k:]), pools[:k]...)
			for _, im := range order {
				s, err := trial(exe, im, n, *settle)
				if err != nil {
					fatal(fmt.Errorf("%s, N=%d, trial %d: %w", im.name, n, r+1, err))
				}
				res[im.name][n] = append(res[im.name][n], s)
				if *verbose {
					fmt.Fprintf(os.Stderr, "trial %d N=%-4d %-9s start %8.1f ms  stop %8.1f ms  stop CPU %8.1f ms  faults %7d  rss %6d KiB (%6d after GC, Go %6d)  threads %4d  fds %4d\n",
						r+1, n, im.name, ms(s.start), ms(s.stop), ms(s.stopCPU), s.stopFaults, s.rss>>10, s.rssGC>>10, s.goMem>>10, s.threads, s.fds)
				}
			}
		}
	}
	report(os.Stdout, sizes, res)
	if *python != "" {
		reportPython(os.Stdout, sizes, res)
	}
	if *svgPath != "" {
		if err := os.WriteFile(*svgPath, plot(sizes, res, machine()), 0o644); err != nil {
			fatal(err)
		}
		fmt.Printf("\nwrote %s\n", *svgPath)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "mxbench:", err)
	os.Exit(1)
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-sizes: %q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

var trialSeq int

// pythonPath is -python: the interpreter of the Python pool.
var pythonPath string

// trial runs one pool of n children: it starts the pool's parent, reads
// the ready lines, samples the parent, sends it SIGTERM and waits until
// the parent and every child are gone. It then checks that every child
// wrote its two lines and that no process of the trial is left.
func trial(exe string, im impl, n int, settle time.Duration) (s sample, err error) {
	dir, err := os.MkdirTemp("", "mxbench-")
	if err != nil {
		return s, err
	}
	defer os.RemoveAll(dir)
	logPath := filepath.Join(dir, "log")
	trialSeq++
	tag := fmt.Sprintf("%d-%d", os.Getpid(), trialSeq)

	r, w, err := os.Pipe()
	if err != nil {
		return s, err
	}
	defer r.Close()
	r.SetReadDeadline(time.Now().Add(2*time.Minute + time.Duration(n)*100*time.Millisecond))
	cmd := exec.Command(exe)
	if im.role == pythonRole {
		cmd = pythonCmd(pythonPath)
	}
	cmd.Env = append(os.Environ(), roleVar+"="+im.role, countVar+"="+strconv.Itoa(n), logVar+"="+logPath, trialVar+"="+tag)
	cmd.Stdout, cmd.Stderr = w, os.Stderr
	meter := newCPUMeter(tag)
	defer func() {
		if cerr := meter.close(); err == nil {
			err = cerr
		}
	}()
	cmd.SysProcAttr = meter.attr()

	var pids []int
	defer func() {
		if err != nil {
			cleanup(cmd, tag)
		}
	}()

	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		w.Close()
		return s, err
	}
	meter.started()
	w.Close()
	br := bufio.NewReader(r)
	for len(pids) < n {
		line, err := br.ReadString('\n')
		if err != nil {
			return s, fmt.Errorf("after %d ready lines: %w", len(pids), err)
		}
		pid, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "ready ")
		p, perr := strconv.Atoi(pid)
		if !ok || perr != nil {
			return s, fmt.Errorf("unexpected line %q", line)
		}
		pids = append(pids, p)
	}
	s.start = time.Since(t0)
	if meter.dir != "" {
		s.startCPU, _ = meter.now(nil)
	}

	time.Sleep(settle)
	parent := cmd.Process.Pid
	if s.rss, s.threads, err = status(parent); err != nil {
		return s, err
	}
	if s.fds, err = countFDs(parent); err != nil {
		return s, err
	}
	// The parent's memory once garbage is collected and returned: what
	// the children cost, not how far the collector let the heap grow.
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return s, err
	}
	line, err := br.ReadString('\n')
	var heap, stack int64
	if _, serr := fmt.Sscanf(line, "mem %d %d\n", &heap, &stack); err != nil || serr != nil {
		return s, fmt.Errorf("memory report %q: %v %v", line, err, serr)
	}
	s.goMem = heap + stack
	if s.rssGC, _, err = status(parent); err != nil {
		return s, err
	}

	cpu0, faults0 := meter.now(append([]int{parent}, pids...))

	t1 := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return s, err
	}
	rest, err := io.ReadAll(br) // end of file: every process holding the pipe has exited
	if err != nil {
		return s, err
	}
	werr := cmd.Wait()
	if err := gone(pids, 10*time.Second); err != nil {
		return s, err
	}
	s.stop = time.Since(t1)

	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		if meter.dir != "" {
			cpu, _ = meter.now(nil)
		}
		s.stopCPU = cpu - cpu0
		s.stopFaults = ru.Minflt - faults0
	}
	if len(rest) > 0 {
		return s, fmt.Errorf("output after SIGTERM: %q", rest)
	}
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled() && ws.Signal() == syscall.SIGTERM, ws.ExitStatus() == 128+int(syscall.SIGTERM):
	case im.role == pythonRole && ws.ExitStatus() == int(syscall.SIGTERM):
		// Python's multiexit exits with the signal's number.
	default:
		return s, fmt.Errorf("parent ended with %v, want death by SIGTERM (or exit status 143)", werr)
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		return s, err
	}
	if got := strings.Count(string(data), "\n"); got != 2*n {
		return s, fmt.Errorf("log has %d lines, want %d (two per child)", got, 2*n)
	}
	if left := tagged(tag); len(left) > 0 {
		return s, fmt.Errorf("processes left behind: %v", left)
	}
	return s, nil
}

// gone waits until none of pids exists (not even as a zombie).
func gone(pids []int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				return fmt.Errorf("child %d still exists after the parent exited", pid)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	return nil
}

// cleanup kills what is left of a failed trial: the parent by its PID and
// every process carrying the trial's tag by its PID.
func cleanup(cmd *exec.Cmd, tag string) {
	if cmd.Process != nil {
		cmd.Process.Kill()
		cmd.Wait()
	}
	for _, pid := range tagged(tag) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// tagged lists the processes whose environment carries the trial's tag.
func tagged(tag string) []int {
	want := []byte(trialVar + "=" + tag + "\x00")
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(d + "/environ")
		if err == nil && (strings.HasPrefix(string(env), string(want)) || strings.Contains(string(env), "\x00"+string(want))) {
			out = append(out, pid)
		}
	}
	return out
}

// status reads a process's resident memory and thread count.
func status(pid int) (rss int64, threads int, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			kb, _ := strconv.ParseInt(f[0], 10, 64)
			rss = kb << 10
		case "Threads":
			threads, _ = strconv.Atoi(f[0])
		}
	}
	if rss == 0 || threads == 0 {
		return 0, 0, errors.New("no VmRSS or Threads in /proc/PID/status")
	}
	return rss, threads, nil
}

// usage sums the CPU time (every thread's, from schedstat, in ns) and the
// minor page faults of processes.
func usage(pids []int) (cpu time.Duration, faults int64) {
	for _, pid := range pids {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
		for _, t := range tasks {
			if data, err := os.ReadFile(t); err == nil {
				if f := strings.Fields(string(data)); len(f) > 0 {
					ns, _ := strconv.ParseInt(f[0], 10, 64)
					cpu += time.Duration(ns)
				}
			}
		}
		if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			s := string(data)
			if i := strings.LastIndexByte(s, ')'); i >= 0 {
				// After the command: state, ppid, pgrp, session, tty,
				// tpgid, flags, minflt.
				if f := strings.Fields(s[i+1:]); len(f) > 7 {
					n, _ := strconv.ParseInt(f[7], 10, 64)
					faults += n
				}
			}
		}
	}
	return cpu, faults
}

func countFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

// machine describes where the run happens.
func machine() string {
	var u syscall.Utsname
	syscall.Uname(&u)
	release := make([]byte, 0, len(u.Release))
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		release = append(release, byte(c))
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		if f := strings.Fields(string(data)); len(f) > 1 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
		}
	}
	return fmt.Sprintf("%d CPUs%s, Linux %s, %s", runtime.NumCPU(), mem, release, runtime.Version())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

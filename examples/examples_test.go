//go:build linux

// The examples are tested as a user runs them: each is built once, run
// with its output read line by line through a pipe, and checked for its
// exit code, the order of its hooks, and that it left no process behind.
package examples_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/multiexit/multiexit/internal/proctest"
)

var examples = []string{"hooks", "workerpool", "cascade", "tidy", "timeout"}

// bin is the directory that holds the built examples.
var bin string

// TestMain builds every example once per test process (so once for
// -count=3), with -race if the tests were built with it.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "multiexit-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = dir
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if race() {
		args = append(args, "-race")
	}
	for _, name := range examples {
		args = append(args, "./"+name)
	}
	// go test puts $GOROOT/bin first in PATH: this is the go that runs us.
	build := exec.Command("go", args...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "%v: %v\n%s", build.Args, err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func race() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// prog is a running example; its standard output, shared by every process
// of its tree, is read line by line.
type prog struct {
	t      *testing.T
	cmd    *exec.Cmd
	sc     *bufio.Scanner
	lines  []string
	stderr proctest.Buffer
	waited bool
	done   func() // releases the read lock on running
}

// running keeps proctest's scan for survivors apart from the examples that
// parallel tests are running. The scan counts every zombie child of the
// test process, whichever test started it, and an example is a zombie from
// its exit until Wait reaps it: a running example holds a read lock, a scan
// the write lock.
var running sync.RWMutex

// limit bounds a run that should take well under a second: past it, the
// example is killed and the test fails.
const limit = 30 * time.Second

// start starts the example name; call it once per test. The cleanups run
// in this order: kill the example if it still runs and reap it, take the
// write lock on running, scan for survivors (proctest), release the lock.
func start(t *testing.T, name string, args ...string) *prog {
	t.Helper()
	t.Cleanup(running.Unlock)
	tag := proctest.Tag(t)
	t.Cleanup(running.Lock)
	running.RLock()
	p := &prog{t: t, cmd: exec.Command(filepath.Join(bin, name), args...), done: sync.OnceFunc(running.RUnlock)}
	// GORACE: a race-enabled binary otherwise sleeps 1s before exit 0.
	p.cmd.Env = append(os.Environ(), proctest.Env(tag), "GORACE=atexit_sleep_ms=0")
	p.cmd.Stderr = &p.stderr
	r, w, err := os.Pipe()
	if err != nil {
		p.done()
		t.Fatal(err)
	}
	p.cmd.Stdout = w
	err = p.cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		p.done()
		t.Fatal(err)
	}
	p.sc = bufio.NewScanner(r)
	timer := time.AfterFunc(limit, func() {
		p.cmd.Process.Kill()
		r.Close() // ends a read that a leaked descendant would block
	})
	t.Cleanup(func() {
		timer.Stop()
		if !p.waited {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
		p.done()
		r.Close()
	})
	return p
}

// waitFor reads lines until one starts with prefix, and returns it.
func (p *prog) waitFor(prefix string) string {
	p.t.Helper()
	for p.sc.Scan() {
		line := p.sc.Text()
		p.lines = append(p.lines, line)
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	p.t.Fatalf("output ended before a line starting with %q; lines:\n%s\nstderr:\n%s",
		prefix, strings.Join(p.lines, "\n"), p.stderr.String())
	return ""
}

// signal sends sig to the example's process (only: not to its tree).
func (p *prog) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := syscall.Kill(p.cmd.Process.Pid, sig); err != nil {
		p.t.Fatal(err)
	}
}

// end reads the output to its end (every process of the tree has exited or
// closed it), waits for the example, and returns every line and how it
// ended: "exit N" or "signal S".
func (p *prog) end() (lines []string, how string) {
	p.t.Helper()
	for p.sc.Scan() {
		p.lines = append(p.lines, p.sc.Text())
	}
	if err := p.sc.Err(); err != nil {
		p.t.Errorf("reading the output: %v (did the run take longer than %v?)", err, limit)
	}
	err := p.cmd.Wait()
	p.waited = true
	p.done()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		p.t.Fatal(err)
	}
	if s := p.stderr.String(); strings.Contains(s, "DATA RACE") {
		p.t.Errorf("data race:\n%s", s)
	}
	if ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() {
		return p.lines, "signal " + ws.Signal().String()
	}
	return p.lines, fmt.Sprintf("exit %d", p.cmd.ProcessState.ExitCode())
}

// check ends p and fails unless it ended as want. It returns the lines.
func (p *prog) check(want string) []string {
	p.t.Helper()
	lines, how := p.end()
	if how != want {
		p.t.Errorf("ended with %s, want %s\noutput:\n%s\nstderr:\n%s", how, want, strings.Join(lines, "\n"), p.stderr.String())
	}
	return lines
}

// quiet fails the test if the example wrote to standard error.
func (p *prog) quiet() {
	p.t.Helper()
	if s := p.stderr.String(); s != "" {
		p.t.Errorf("standard error should be empty, got:\n%s", s)
	}
}

// last returns the last n lines (fewer if there are not n).
func last(lines []string, n int) []string { return lines[max(0, len(lines)-n):] }

// after returns the lines after the first that starts with prefix.
func after(lines []string, prefix string) []string {
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return lines[i+1:]
		}
	}
	return nil
}

func diff(t *testing.T, what string, want, got []string) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s (-want +got):\n%s", what, d)
	}
}

func TestHooks(t *testing.T) {
	t.Parallel()
	lifo := []string{"hook 3: remove the pid file", "hook 2: flush the log", "hook 1: close the database"}
	t.Run("return", func(t *testing.T) {
		t.Parallel()
		p := start(t, "hooks")
		diff(t, "output", append([]string{
			"registered hook 1: close the database",
			"registered hook 2: flush the log",
			"registered hook 3: remove the pid file",
			"main: done, returning nil",
		}, lifo...), p.check("exit 0"))
		p.quiet()
	})
	for _, tc := range []struct {
		sig  syscall.Signal
		want string
	}{{syscall.SIGTERM, "signal terminated"}, {syscall.SIGINT, "signal interrupt"}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			t.Parallel()
			if tc.sig == syscall.SIGINT && signal.Ignored(os.Interrupt) {
				t.Skip("SIGINT is ignored here, and so in the example: run the tests in the foreground")
			}
			p := start(t, "hooks", "-wait")
			p.waitFor("ready: pid")
			p.signal(tc.sig)
			lines := p.check(tc.want)
			diff(t, "after ready", append([]string{"main: received signal " + tc.sig.String()}, lifo...), after(lines, "ready: pid"))
			p.quiet()
		})
	}
}

// A timeline line of workerpool: "  12 ms  worker 2 pid 4242    what".
var timelineRE = regexp.MustCompile(`^ *(\d+) ms  (parent|worker \d) +pid (\d+) +(.*)$`)

type event struct{ who, pid, what string }

// timeline parses the lines after TIMELINE.
func timeline(t *testing.T, lines []string) []event {
	t.Helper()
	var evs []event
	for _, l := range after(lines, "TIMELINE") {
		m := timelineRE.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("not a timeline line: %q", l)
			continue
		}
		evs = append(evs, event{m[2], m[3], m[4]})
	}
	return evs
}

// whats returns what who did, in order.
func whats(evs []event, who string) []string {
	var out []string
	for _, e := range evs {
		if e.who == who {
			out = append(out, e.what)
		}
	}
	return out
}

// pidRE hides PIDs and durations, which change from run to run.
var pidRE = regexp.MustCompile(`pid \d+|\(pid \d+\)|\d+\.pid|done in \d+ms|/\S*workerpool-\d+`)

func normalise(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = pidRE.ReplaceAllStringFunc(s, func(m string) string {
			switch {
			case strings.HasPrefix(m, "("):
				return "(pid N)"
			case strings.HasPrefix(m, "pid"):
				return "pid N"
			case strings.HasSuffix(m, ".pid"):
				return "N.pid"
			case strings.HasPrefix(m, "done"):
				return "done in D"
			}
			return "DIR"
		})
	}
	return out
}

func checkWorkerpool(t *testing.T, lines []string, cause string) {
	t.Helper()
	evs := timeline(t, lines)
	for i := 1; i <= 3; i++ {
		w := fmt.Sprintf("worker %d", i)
		diff(t, w+"'s hooks", []string{
			`hook "stop taking jobs"`,
			`hook "finish the current job": done in D`,
			`shared hook "rundir": remove N.pid`,
		}, normalise(whats(evs, w)))
	}
	parent := normalise(whats(evs, "parent"))
	if len(parent) < 7 {
		t.Fatalf("parent's timeline: %q", parent)
	}
	diff(t, "the parent's first events", []string{"shutdown begins: " + cause, "status server closed"}, parent[:2])
	stopped := slices.Sorted(slices.Values(parent[2 : len(parent)-5]))
	diff(t, "the children stopped by the group", []string{
		"sh (pid N) has stopped: signal: terminated",
		"worker 1 (pid N) has stopped: signal: terminated",
		"worker 2 (pid N) has stopped: signal: terminated",
		"worker 3 (pid N) has stopped: signal: terminated",
	}, stopped)
	diff(t, "the parent's hooks, newest first", []string{
		`hook "flush metrics"`,
		`hook "close the job queue"`,
		`shared hook "rundir": remove N.pid`,
		`shared hook "rundir": remove DIR`,
		"last hook: exiting",
	}, parent[len(parent)-5:])
	// Every worker line comes before the parent's first hook.
	firstHook := slices.IndexFunc(evs, func(e event) bool { return e.what == `hook "flush metrics"` })
	for i, e := range evs {
		if e.who != "parent" && i > firstHook {
			t.Errorf("%s ran %q after the parent's hooks began", e.who, e.what)
		}
	}
	for _, l := range lines {
		if dir, ok := strings.CutPrefix(timelineRE.ReplaceAllString(l, "$4"), `shared hook "rundir": remove /`); ok {
			if _, err := os.Stat("/" + dir); !os.IsNotExist(err) {
				t.Errorf("the run directory /%s is still there: %v", dir, err)
			}
		}
	}
}

func TestWorkerpool(t *testing.T) {
	t.Parallel()
	t.Run("demo", func(t *testing.T) {
		t.Parallel()
		p := start(t, "workerpool")
		lines := p.check("exit 0")
		status := normalise(slices.DeleteFunc(slices.Clone(lines), func(l string) bool { return !strings.HasPrefix(l, "status ") }))
		for i := range status {
			_, status[i], _ = strings.Cut(status[i], ": ")
		}
		diff(t, "the status endpoint", []string{
			"worker 1 pid N", "worker 2 pid N", "worker 3 pid N",
			`external "sh -c sleep 1000 & sleep 1000 & wait" pid N`,
		}, status)
		checkWorkerpool(t, lines, "the demo finished")
		p.quiet()
	})
	t.Run("serve until SIGTERM", func(t *testing.T) {
		t.Parallel()
		p := start(t, "workerpool", "-serve")
		url := strings.Fields(strings.TrimPrefix(p.waitFor("serving status on "), "serving status on "))[0]
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || strings.Count(string(body), "worker ") != 3 {
			t.Errorf("GET %s: %q, %v", url, body, err)
		}
		p.signal(syscall.SIGTERM)
		checkWorkerpool(t, p.check("signal terminated"), "received signal terminated")
		p.quiet()
	})
}

func TestCascade(t *testing.T) {
	t.Parallel()
	p := start(t, "cascade")
	lines := normalise(p.check("exit 0"))
	diff(t, "output", []string{
		"worker 1 (pid N): up",
		"worker 2 (pid N): up",
		"worker 3 (pid N): up",
		"main: the chain is up; main returns, the exit hooks run",
		" 1. main: stopping worker 1",
		" 2. worker 1: stopping worker 2",
		" 3. worker 2: stopping worker 3",
		" 4. worker 3: own hook",
		" 5. worker 3: goodbye from the cascade",
		" 6. worker 2: worker 3 has stopped (signal: terminated)",
		" 7. worker 2: goodbye from the cascade",
		" 8. worker 1: worker 2 has stopped (signal: terminated)",
		" 9. worker 1: goodbye from the cascade",
		"10. main: worker 1 has stopped (signal: terminated)",
		"11. main: goodbye from the cascade",
	}, lines)
	p.quiet()
}

func TestTidy(t *testing.T) {
	t.Parallel()
	p := start(t, "tidy")
	var got []string
	for _, l := range p.check("exit 0") {
		if !strings.HasPrefix(l, "  | ") {
			got = append(got, regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(l, "PORT"))
		}
	}
	diff(t, "output", []string{
		"run 1: the parent will end by error",
		"run 1: the parent exited (exit status 1) and so did its tree",
		"run 1: PORT is free again",
		"run 2: the parent will end by signal",
		"run 2: the parent exited (signal: terminated) and so did its tree",
		"run 2: PORT is free again",
		"tidy: both runs left nothing behind",
	}, got)
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	t.Run("expires", func(t *testing.T) {
		t.Parallel()
		p := start(t, "timeout", "-timeout", "200ms")
		lines := p.check("exit 124")
		diff(t, "the stop", []string{
			"timeout: 200ms expired; stopping pid N and its process group",
			"timeout: stopped: signal: terminated",
		}, normalise(last(lines, 2)))
		p.quiet()
	})
	t.Run("SIGTERM ignored: killed after the grace period", func(t *testing.T) {
		t.Parallel()
		p := start(t, "timeout", "-timeout", "200ms", "-grace", "100ms", "--",
			"sh", "-c", `trap "" TERM; sleep 1000 & sleep 1000; wait`)
		lines := p.check("exit 124")
		diff(t, "the stop", []string{"timeout: stopped: signal: killed"}, last(lines, 1))
	})
	t.Run("ends in time", func(t *testing.T) {
		t.Parallel()
		p := start(t, "timeout", "-timeout", "1m", "--", "sh", "-c", "exit 3")
		p.check("exit 3")
	})
	t.Run("SIGTERM to timeout stops the tree", func(t *testing.T) {
		t.Parallel()
		p := start(t, "timeout", "-timeout", "1m")
		p.waitFor("sh: started two sleeps")
		p.signal(syscall.SIGTERM)
		p.check("signal terminated")
		p.quiet()
	})
}

//go:build linux

// The examples are tested as a user runs them: each is built once, run
// with its output read line by line through a pipe, and checked for its
// exit code, the order of its hooks, and that it left no process behind.
package examples_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/multiexit/multiexit/internal/proctest"
)

var examples = []string{"hooks", "workerpool", "cascade", "tidy", "timeout", "drain", "prefork"}

// bin is the directory that holds the built examples.
var bin string

// TestMain builds every example once per test process.
func TestMain(m *testing.M) {
	var pkgs []string
	for _, name := range examples {
		pkgs = append(pkgs, "./"+name)
	}
	dir, remove := proctest.Build(pkgs...)
	bin = dir
	code := m.Run()
	remove()
	os.Exit(code)
}

// prog is a running example (see proctest.Proc).
type prog struct {
	*proctest.Proc
	t    *testing.T
	done func() // releases the read lock on running
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
// in this order: kill the example if it still runs and reap it, release
// the read lock on running, take the write lock, scan for survivors
// (proctest), release the lock.
func start(t *testing.T, name string, args ...string) *prog {
	t.Helper()
	return startPath(t, filepath.Join(bin, name), args...)
}

// startPath is start for the program at path.
func startPath(t *testing.T, path string, args ...string) *prog {
	t.Helper()
	t.Cleanup(running.Unlock)
	tag := proctest.Tag(t)
	t.Cleanup(running.Lock)
	running.RLock()
	p := &prog{t: t, done: sync.OnceFunc(running.RUnlock)}
	t.Cleanup(p.done)
	p.Proc = proctest.Start(t, exec.Command(path, args...), proctest.Options{Tag: tag, Limit: limit})
	return p
}

// end reads the output to its end (every process of the tree has exited or
// closed it), waits for the example, and returns every line and how it
// ended: "exit N" or "signal S".
func (p *prog) end() (lines []string, how string) {
	p.t.Helper()
	lines, how = p.End()
	p.done()
	return lines, how
}

// check ends p and fails unless it ended as want. It returns the lines.
func (p *prog) check(want string) []string {
	p.t.Helper()
	lines, how := p.end()
	p.Ended(how, want)
	return lines
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
		p.Quiet()
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
			p.WaitFor("ready: pid")
			p.Signal(tc.sig)
			lines := p.check(tc.want)
			diff(t, "after ready", append([]string{"main: received signal " + tc.sig.String()}, lifo...), after(lines, "ready: pid"))
			p.Quiet()
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
		p.Quiet()
	})
	t.Run("serve until SIGTERM", func(t *testing.T) {
		t.Parallel()
		p := start(t, "workerpool", "-serve")
		url := strings.Fields(strings.TrimPrefix(p.WaitFor("serving status on "), "serving status on "))[0]
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || strings.Count(string(body), "worker ") != 3 {
			t.Errorf("GET %s: %q, %v", url, body, err)
		}
		p.Signal(syscall.SIGTERM)
		checkWorkerpool(t, p.check("signal terminated"), "received signal terminated")
		p.Quiet()
	})
}

func TestCascade(t *testing.T) {
	t.Parallel()
	p := start(t, "cascade")
	lines := normalise(p.check("exit 0"))
	if len(lines) > 3 {
		slices.Sort(lines[:3]) // the workers say they are up in any order
	}
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
	p.Quiet()
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
		p.Quiet()
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
		p.WaitFor("sh: started two sleeps")
		p.Signal(syscall.SIGTERM)
		p.check("signal terminated")
		p.Quiet()
	})
}

// The Kubernetes contract, emulated: SIGTERM goes to the process only; the
// endpoints still point at it for a while, so a client keeps sending
// requests after its readiness fails; the kubelet's SIGKILL would follow
// at the end of the grace period. No request may fail, readiness must
// fail once the signal is in, and the process must end by SIGTERM without
// the SIGKILL.
func TestDrain(t *testing.T) {
	t.Parallel()
	const (
		grace   = limit // terminationGracePeriodSeconds, above -timeout
		lagging = 20    // requests sent after readiness failed
	)
	p := start(t, "drain", "-addr", "127.0.0.1:0", "-drain", "3s", "-timeout", "20s")
	url := strings.TrimPrefix(p.WaitFor("listening on "), "listening on ")
	tr := &http.Transport{} // keeps its connections alive, as a load balancer does
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	get := func(path string) int {
		t.Helper()
		resp, err := client.Get(url + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	sent := 0
	work := func() {
		t.Helper()
		sent++
		if code := get("/"); code != http.StatusOK {
			t.Fatalf("GET / (request %d): %d", sent, code)
		}
	}
	if code := get("/readyz"); code != http.StatusOK {
		t.Fatalf("GET /readyz before SIGTERM: %d", code)
	}
	work()

	var killed atomic.Bool
	kubelet := time.AfterFunc(grace, func() { killed.Store(true); p.Cmd.Process.Kill() })
	defer kubelet.Stop()
	p.Signal(syscall.SIGTERM)
	// Until readiness fails, and then for a while, requests keep coming.
	ready := true
	for i := 0; ready; i++ {
		if i == 10000 {
			t.Fatal("/readyz still answers 200 after 10000 requests since SIGTERM")
		}
		work()
		switch code := get("/readyz"); code {
		case http.StatusServiceUnavailable:
			ready = false
		case http.StatusOK:
		default:
			t.Fatalf("GET /readyz after SIGTERM: %d", code)
		}
	}
	for range lagging {
		work()
	}
	tr.CloseIdleConnections()

	lines := p.check("signal terminated")
	if killed.Load() {
		t.Fatalf("the kubelet's SIGKILL was needed: the stop took longer than the grace period (%v)", grace)
	}
	diff(t, "the stop", []string{
		"stopping: /readyz fails from now on; / serves on for the drain delay (3s)",
		"drain over: main returns, the exit hooks run",
		fmt.Sprintf("hook: close the server (served %d requests)", sent),
		"hook: close the database",
	}, after(lines, "listening on "))
	p.Quiet()
}

//go:build linux

package examples_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/multiexit/multiexit/internal/procfs"
)

// get fetches url on a new connection and returns the status and body.
func get(url string) (int, string, error) {
	code, body, _, err := getHeader(url, "")
	return code, body, err
}

// getHeader is get, and the value of the response's header name.
func getHeader(url, name string) (int, string, string, error) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get(name), err
}

var preforkBody = regexp.MustCompile(`^pid=(\d+) generation=1$`)

// The prefork contract (issue 19): the parent listens, 4 supervised
// workers serve GET / on the one socket; GET /crash answers "crashing"
// and the worker is restarted; several clients, each request on a new
// connection, of 0 and 40 ms, see no failure while workers crash; at
// SIGTERM every worker runs its hooks and the process dies by SIGTERM.
func TestPrefork(t *testing.T) {
	p := start(t, "prefork", "-addr", "127.0.0.1:0")
	addr := strings.TrimPrefix(p.WaitFor("listening on "), "listening on ")
	base := "http://" + addr

	code, body, err := get(base + "/")
	if err != nil || code != 200 || !preforkBody.MatchString(body) {
		t.Fatalf("GET /: %d %q %v", code, body, err)
	}

	// Clients: 4 goroutines, 50 requests each, alternating / and
	// /slow?ms=40, while 4 crashes are asked for (fewer than the restart
	// limit, even if one worker takes them all).
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	pids := map[string]bool{}
	for c := range 4 {
		wg.Go(func() {
			for i := range 50 {
				url := base + "/"
				if (c+i)%2 == 1 {
					url = base + "/slow?ms=40"
				}
				code, body, err := get(url)
				mu.Lock()
				if err != nil || code != 200 {
					failures = append(failures, fmt.Sprintf("%s: %d %q %v", url, code, body, err))
				} else {
					pids[strings.Fields(body)[0]] = true
				}
				mu.Unlock()
			}
		})
	}
	// Two of the crashes may reach one worker before it stopped
	// accepting: the workers that crashed are counted by PID.
	crashedPIDs := map[string]bool{}
	for range 4 {
		code, body, pid, err := getHeader(base+"/crash", "Worker-Pid")
		if err != nil || code != 200 || body != "crashing" || pid == "" {
			t.Errorf("GET /crash: %d %q pid %q %v", code, body, pid, err)
			continue
		}
		crashedPIDs[pid] = true
	}
	crashed := len(crashedPIDs)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of 200 requests failed while workers crashed, e.g. %s", len(failures), failures[0])
	}

	// Every crash is restarted before the stop (a crash seen after the
	// shutdown began would not be): wait for the parent to log each, and
	// for each crashed worker's successor to be there. The log line comes
	// first: the restart may still wait out its backoff (a worker that
	// crashed again) or be starting, and the shutdown would cancel it.
	// A successor the parent has forked is in its place: the stop of the
	// workers' entry takes it (and waits until it caught its signals).
	restarts := func() int { return strings.Count(p.Stderr.String(), "supervised child exited; restarting it") }
	for i := 0; restarts() < crashed || workersBesides(p.Cmd.Process.Pid, crashedPIDs) < 4; i++ {
		if i == 3000 {
			t.Fatalf("%d restarts logged for %d crashes, %d workers but the crashed ones, after 30 s; stderr:\n%s",
				restarts(), crashed, workersBesides(p.Cmd.Process.Pid, crashedPIDs), p.Stderr.String())
		}
		time.Sleep(10 * time.Millisecond) // polls the log and /proc
	}
	p.Signal(syscall.SIGTERM)
	lines, how := p.end()
	p.Ended(how, "signal terminated")
	hooks := 0
	for _, l := range lines {
		if regexp.MustCompile(`^worker \d+ generation 1: hooks done$`).MatchString(l) {
			hooks++
		}
	}
	if hooks != 4 {
		t.Errorf("%d workers ran their hooks, want 4 (crashed ones run none); output:\n%s", hooks, strings.Join(lines, "\n"))
	}
	if n := restarts(); n != crashed {
		t.Errorf("%d restarts logged for %d crashes; stderr:\n%s", n, crashed, p.Stderr.String())
	}
	if len(pids) < 2 {
		t.Errorf("answers came from %d worker(s): %v", len(pids), pids)
	}
}

// workersBesides counts the children of the prefork parent pid that are
// workers (not its guardian, which carries MULTIEXIT_GUARDIAN) and not
// among gone (PIDs).
func workersBesides(pid int, gone map[string]bool) int {
	n := 0
	for _, k := range procfs.Children(pid) {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", k))
		if err == nil && !gone[strconv.Itoa(k)] && !strings.Contains("\x00"+string(env), "\x00MULTIEXIT_GUARDIAN=") {
			n++
		}
	}
	return n
}

// prefork -crash-on-start: every worker exits 1 right after it started;
// the intensity limit stops the tree in order and the process exits 1,
// naming the child and the limit.
func TestPreforkCrashOnStart(t *testing.T) {
	p := start(t, "prefork", "-addr", "127.0.0.1:0", "-workers", "2", "-crash-on-start")
	p.check("exit 1")
	if !strings.Contains(p.Stderr.String(), "restart limit reached (Burst 5 in 10s)") {
		t.Errorf("stderr does not name the limit:\n%s", p.Stderr.String())
	}
}

var generationOf = regexp.MustCompile(`^pid=(\d+) generation=(\d+)$`)

// load runs clients goroutines that each GET / and /slow?ms=40 in turn, a
// new connection per request, until stop is closed and each made 50
// requests at least; warm is closed once 20 requests were answered. wait
// returns, once they have stopped, the failures and the generations that
// answered, with the number of requests.
func load(base string, clients int, stop <-chan struct{}) (warm <-chan struct{}, wait func() (failures []string, gens map[string]int, n int)) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	gens, n := map[string]int{}, 0
	warmed := make(chan struct{})
	for c := range clients {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					if i >= 50 {
						return
					}
				default:
				}
				url := base + "/"
				if (c+i)%2 == 1 {
					url = base + "/slow?ms=40"
				}
				code, body, err := get(url)
				mu.Lock()
				n++
				if n == 20 {
					close(warmed)
				}
				if err != nil || code != 200 {
					failures = append(failures, fmt.Sprintf("%s: %d %q %v", url, code, body, err))
				} else if f := strings.Fields(body); len(f) > 1 {
					gens[f[1]]++
				}
				mu.Unlock()
			}
		})
	}
	return warmed, func() ([]string, map[string]int, int) {
		wg.Wait()
		return failures, gens, n
	}
}

// The reload contract (issues 19 and 20): under load — several clients, a
// new connection per request — SIGHUP starts generation 2; once it serves
// the parent prints "reloaded: generation 2", then the 4 old workers stop
// in order (their hooks print after it); no request fails, and afterwards
// only generation 2 answers. At SIGTERM generation 2's hooks run and the
// process dies by it.
func TestPreforkReload(t *testing.T) {
	p := start(t, "prefork", "-addr", "127.0.0.1:0")
	addr := strings.TrimPrefix(p.WaitFor("listening on "), "listening on ")
	base := "http://" + addr

	stop := make(chan struct{})
	warm, wait := load(base, 4, stop)
	<-warm
	if code, body, err := get(base + "/"); err != nil || code != 200 || !generationOf.MatchString(body) {
		close(stop)
		wait()
		t.Fatalf("GET /: %d %q %v", code, body, err)
	}
	p.Signal(syscall.SIGHUP)
	p.WaitFor("reloaded: generation 2")
	for range 4 {
		p.WaitFor("worker ")
	}
	close(stop)
	failures, gens, n := wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed across the reload, e.g. %s", len(failures), n, failures[0])
	}
	t.Logf("%d requests across the reload, by generation: %v", n, gens)
	for range 20 {
		code, body, err := get(base + "/")
		if m := generationOf.FindStringSubmatch(body); err != nil || code != 200 || m == nil || m[2] != "2" {
			t.Errorf("after the reload GET /: %d %q %v, want generation 2", code, body, err)
		}
	}
	p.Signal(syscall.SIGTERM)
	lines, how := p.end()
	p.Ended(how, "signal terminated")
	hooks := map[string]int{}
	hookRE := regexp.MustCompile(`^worker \d+ generation (\d+): hooks done$`)
	order := []string{}
	for _, l := range lines {
		if m := hookRE.FindStringSubmatch(l); m != nil {
			hooks[m[1]]++
			order = append(order, "hooks "+m[1])
		}
		if strings.HasPrefix(l, "reloaded: ") || strings.HasPrefix(l, "reload done: ") {
			order = append(order, l)
		}
	}
	want := []string{"reloaded: generation 2", "hooks 1", "hooks 1", "hooks 1", "hooks 1", "reload done: generation 2, the old one stopped",
		"hooks 2", "hooks 2", "hooks 2", "hooks 2"}
	diff(t, "reloads and hooks", want, order)
}

// A deploy that puts a binary that cannot start at prefork's path: the
// reload fails (prefork says so), the old generation serves on, under
// load, without a failed request; once a good binary is back in place the
// next reload runs it.
func TestPreforkReloadBadBinary(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "prefork")
	copyFile(t, filepath.Join(bin, "prefork"), path)
	p := startPath(t, path, "-addr", "127.0.0.1:0", "-workers", "2")
	base := "http://" + strings.TrimPrefix(p.WaitFor("listening on "), "listening on ")
	stop := make(chan struct{})
	warm, wait := load(base, 4, stop)
	<-warm

	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("#!/bin/sh\necho new binary fails >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bad, path); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGHUP)
	if l := p.WaitFor("reload failed: "); !strings.Contains(l, "exited before it acknowledged Install: exit status 1") {
		t.Errorf("the failure does not say why: %q", l)
	}
	copyFile(t, filepath.Join(bin, "prefork"), path+".new")
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGHUP)
	p.WaitFor("reloaded: generation 2")
	p.WaitFor("worker ")
	p.WaitFor("worker ")
	close(stop)
	failures, gens, n := wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed across the failed and the good reload, e.g. %s", len(failures), n, failures[0])
	}
	t.Logf("%d requests, by generation: %v", n, gens)
	p.Signal(syscall.SIGTERM)
	lines := p.check("signal terminated")
	var hooks []string
	for _, l := range lines {
		if strings.HasSuffix(l, ": hooks done") {
			hooks = append(hooks, regexp.MustCompile(`^worker \d+ `).ReplaceAllString(l, "worker "))
		}
	}
	diff(t, "the hooks", []string{"worker generation 1: hooks done", "worker generation 1: hooks done",
		"worker generation 2: hooks done", "worker generation 2: hooks done"}, hooks)
}

// copyFile copies src to dst, executable.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err == nil {
		err = os.WriteFile(dst, b, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
}

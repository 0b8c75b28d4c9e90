//go:build linux

package examples_test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
	// shutdown began would not be): wait for the parent to log each.
	restarts := func() int { return strings.Count(p.Stderr.String(), "supervised child exited; restarting it") }
	for i := 0; restarts() < crashed; i++ {
		if i == 3000 {
			t.Fatalf("%d restarts logged for %d crashes after 30 s; stderr:\n%s", restarts(), crashed, p.Stderr.String())
		}
		time.Sleep(10 * time.Millisecond) // polls the log
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

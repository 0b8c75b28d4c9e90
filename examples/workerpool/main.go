// Command workerpool is the main demo of multiexit: a parent process with a
// pool of workers (this binary, re-executed), an external command that
// starts children of its own, and an HTTP status endpoint, all in one
// github.com/oklog/run group, shutting down in order and leaving nothing
// behind.
//
//	go run ./examples/workerpool              # a full cycle by itself; exit 0
//	go run ./examples/workerpool -serve       # runs until Ctrl-C (then dies by SIGINT)
//	go run ./examples/workerpool -serve -addr 127.0.0.1:8080
//
// With no flags it starts everything, queries its own status endpoint, and
// ends its run group, which begins the shutdown. Every process then prints
// a TIMELINE line per step, in milliseconds since the shutdown began: the
// group stops the status server and each child (a worker runs its hooks
// newest first, then the shared hook it inherited), then the parent's hooks
// run, newest first. The shared hook "rundir" runs in every process with
// the run directory: each removes its pid file, and the parent, last of
// all, the directory.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oklog/run"

	"github.com/multiexit/multiexit"
)

const workers = 3

var rundir = multiexit.Define("rundir", func(ctx context.Context, dir string) error {
	event(`shared hook "rundir": remove %d.pid`, os.Getpid())
	if err := os.Remove(pidFile(dir)); err != nil || multiexit.IsChild() {
		return err
	}
	event(`shared hook "rundir": remove %s`, dir)
	return os.RemoveAll(dir)
})

// role names this process in the timeline; dir is the run directory.
var role, dir = "parent", ""

func main() {
	serve := flag.Bool("serve", false, "serve until Ctrl-C instead of running the demo")
	addr := flag.String("addr", "127.0.0.1:0", "status endpoint address")
	id := flag.Int("id", 0, "worker number (set by the parent)")
	flag.StringVar(&dir, "dir", "", "run directory (set by the parent)")
	flag.Parse()
	if multiexit.IsChild() {
		worker(*id) // never returns
	}
	var err error
	if dir, err = os.MkdirTemp("", "workerpool-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Registered first, so it runs last: after every child has stopped.
	multiexit.Register(func(ctx context.Context) error { event("last hook: exiting"); return nil })
	rundir.Register(dir) // every worker started from now on inherits it
	os.WriteFile(pidFile(dir), nil, 0o644)
	multiexit.Register(func(ctx context.Context) error { event(`hook "close the job queue"`); return nil })
	multiexit.Run(func(ctx context.Context) error {
		return parent(ctx, *addr, *serve)
	}, multiexit.WithGrace(2*time.Second), multiexit.WithTimeout(8*time.Second))
}

func parent(ctx context.Context, addr string, serve bool) error {
	var cmds []*exec.Cmd
	for i := 1; i <= workers; i++ {
		cmds = append(cmds, multiexit.Command("-id", strconv.Itoa(i), "-dir", dir))
	}
	const script = "sleep 1000 & sleep 1000 & wait" // an external command with children
	sh := exec.Command("sh", "-c", script)
	sh.Stdout, sh.Stderr = os.Stdout, os.Stderr
	kids, err := multiexit.Start(append(cmds, sh)...) // returns once every worker called Run
	if err != nil {
		return err
	}
	say("parent (pid %d): started %d workers and sh (pid %d)", os.Getpid(), workers, kids[workers].PID())
	multiexit.Register(func(ctx context.Context) error { event(`hook "flush metrics"`); return nil })

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String() + "/"
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i, k := range kids[:workers] {
			fmt.Fprintf(w, "worker %d pid %d\n", i+1, k.PID())
		}
		fmt.Fprintf(w, "external %q pid %d\n", "sh -c "+script, kids[workers].PID())
	})}

	var g run.Group
	execute, interrupt := multiexit.ShutdownActor()
	g.Add(execute, func(err error) { began(err); interrupt(err) }) // interrupted first
	g.Add(func() error { return srv.Serve(ln) }, func(error) {
		srv.Shutdown(context.Background())
		event("status server closed")
	})
	for i, k := range kids {
		name := fmt.Sprintf("worker %d", i+1)
		if i == workers {
			name = "sh"
		}
		execute, interrupt := k.Actor()
		g.Add(func() error {
			err := execute()
			event("%s (pid %d) has stopped: %v", name, k.PID(), err)
			return err
		}, interrupt)
	}
	if serve {
		say("serving status on %s  (press Ctrl-C to stop)", url)
	} else {
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return demo(ctx, url) }, func(error) { cancel() })
	}
	if err := g.Run(); ctx.Err() == nil {
		return err // nil when the demo ended the group
	}
	return nil // a signal: Run exits with 128+signal
}

// demo queries the status endpoint; when it returns, the group ends.
func demo(ctx context.Context, url string) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		say("status %s: %s", url, line)
	}
	say("parent: demo done; ending the run group starts the shutdown")
	return err
}

func worker(id int) {
	role = fmt.Sprintf("worker %d", id)
	os.WriteFile(pidFile(dir), nil, 0o644)
	multiexit.Register(func(ctx context.Context) error {
		d := time.Duration(id) * 30 * time.Millisecond // the job in hand
		select {
		case <-time.After(d):
			event(`hook "finish the current job": done in %v`, d)
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	multiexit.Register(func(ctx context.Context) error { event(`hook "stop taking jobs"`); return nil })
	say("worker %d (pid %d): ready", id, os.Getpid())
	multiexit.Run(func(ctx context.Context) error {
		<-ctx.Done() // a real worker would take jobs until then
		return nil
	})
}

func pidFile(dir string) string { return filepath.Join(dir, strconv.Itoa(os.Getpid())+".pid") }

// began writes the time into the run directory, for the workers'
// timelines, and prints the timeline's first line.
func began(err error) {
	os.WriteFile(filepath.Join(dir, "began"), []byte(strconv.FormatInt(time.Now().UnixNano(), 10)), 0o644)
	cause := "the demo finished"
	if err != nil {
		cause = err.Error()
	}
	say("TIMELINE (ms since the shutdown began)")
	event("shutdown begins: %s", cause)
}

var t0 = sync.OnceValue(func() time.Time {
	b, err := os.ReadFile(filepath.Join(dir, "began"))
	if n, perr := strconv.ParseInt(string(b), 10, 64); err == nil && perr == nil {
		return time.Unix(0, n)
	}
	return time.Now() // stopped some other way (its parent died, say)
})

// event prints one timeline line.
func event(format string, args ...any) {
	ms := time.Since(t0()).Milliseconds()
	say("%6d ms  %-8s pid %-7d %s", ms, role, os.Getpid(), fmt.Sprintf(format, args...))
}

// say prints one line in a single write: the processes share standard output.
func say(format string, args ...any) {
	os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n")
}

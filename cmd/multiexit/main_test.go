//go:build linux

// The tool is tested as a user runs it: built once, run on real process
// trees whose scripts say what they do on standard output (read line by
// line through a pipe), and checked for its status and for what it left:
// every process of a test carries its proctest tag, and none may survive.
package main_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/multiexit/multiexit/internal/proctest"
)

// bin is the built tool.
var bin string

// TestMain builds the tool once per test process, with -race if the tests
// were built with it.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "multiexit-cmd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "multiexit")
	args := []string{"build", "-o", bin}
	if race() {
		args = append(args, "-race")
	}
	// go test puts $GOROOT/bin first in PATH: this is the go that runs us.
	build := exec.Command("go", append(args, ".")...)
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

// limit bounds a run that should take well under a second: past it, the
// tool is killed and the test fails. It is a guard, not an assertion.
const limit = 30 * time.Second

// prog is a running multiexit; the standard output of its whole tree is
// read line by line, and its standard input is a pipe from the test.
type prog struct {
	t      *testing.T
	cmd    *exec.Cmd
	sc     *bufio.Scanner
	in     io.WriteCloser
	lines  []string
	stderr proctest.Buffer
	errEOF chan struct{} // closed when standard error is closed by all
	waited bool
	fds    map[string]int // pidfds of the tree's processes (pids)
	pid    map[string]int // and their PIDs
	alive  []string       // those still running when multiexit had exited
}

// start runs multiexit with args, tagged; env adds to its environment.
func start(t *testing.T, env []string, args ...string) *prog {
	t.Helper()
	return startProgram(t, env, bin, args...)
}

// startProgram is start for any program (one that runs multiexit).
func startProgram(t *testing.T, env []string, name string, args ...string) *prog {
	t.Helper()
	tag := proctest.Tag(t)
	p := &prog{t: t, cmd: exec.Command(name, args...)}
	// GORACE: a race-enabled binary otherwise sleeps 1s before exit 0.
	p.cmd.Env = append(append(os.Environ(), proctest.Env(tag), "GORACE=atexit_sleep_ms=0"), env...)
	// Standard error is a pipe of the test's own, so that Wait returns when
	// multiexit exits, whoever else holds it.
	er, ew, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = ew
	p.errEOF = make(chan struct{})
	go func() {
		io.Copy(&p.stderr, er)
		er.Close()
		close(p.errEOF)
	}()
	in, err := p.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.in = in
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = w
	err = p.cmd.Start()
	w.Close()
	ew.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	p.sc = bufio.NewScanner(r)
	timer := time.AfterFunc(limit, func() {
		p.cmd.Process.Kill()
		r.Close() // ends a read that a leaked descendant would block
		er.Close()
	})
	t.Cleanup(func() {
		timer.Stop()
		if !p.waited {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
		in.Close()
		r.Close()
		er.Close()
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

// waitAll reads lines until one starting with each prefix was seen, in
// any order.
func (p *prog) waitAll(prefixes ...string) {
	p.t.Helper()
	seen := map[string]bool{}
	for len(seen) < len(prefixes) {
		if !p.sc.Scan() {
			p.t.Fatalf("output ended; waiting for %q; lines:\n%s\nstderr:\n%s",
				prefixes, strings.Join(p.lines, "\n"), p.stderr.String())
		}
		line := p.sc.Text()
		p.lines = append(p.lines, line)
		for _, pre := range prefixes {
			if strings.HasPrefix(line, pre) {
				seen[pre] = true
			}
		}
	}
}

// pids reads lines until one starting with each prefix was seen, in any
// order, each ending in a PID, and returns a pidfd for each, opened at
// once.
func (p *prog) pids(prefixes ...string) map[string]int {
	p.t.Helper()
	fds := map[string]int{}
	if p.fds == nil {
		p.fds, p.pid = map[string]int{}, map[string]int{}
	}
	for len(fds) < len(prefixes) {
		if !p.sc.Scan() {
			p.t.Fatalf("output ended; waiting for %q; lines:\n%s\nstderr:\n%s",
				prefixes, strings.Join(p.lines, "\n"), p.stderr.String())
		}
		line := p.sc.Text()
		p.lines = append(p.lines, line)
		for _, pre := range prefixes {
			if !strings.HasPrefix(line, pre) {
				continue
			}
			f := strings.Fields(line)
			pid, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				p.t.Fatalf("no PID at the end of %q", line)
			}
			fd, err := unix.PidfdOpen(pid, 0)
			if err != nil {
				p.t.Fatalf("%s: pid %d: %v", pre, pid, err)
			}
			p.t.Cleanup(func() { unix.Close(fd) })
			fds[pre], p.fds[pre], p.pid[pre] = fd, fd, pid
		}
	}
	return fds
}

// say writes a line to the tool's standard input (COMMAND's).
func (p *prog) say(line string) {
	p.t.Helper()
	if _, err := io.WriteString(p.in, line+"\n"); err != nil {
		p.t.Fatal(err)
	}
}

func (p *prog) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// wait waits for the tool and returns how it ended: "exit N" or "signal
// S". The moment it has exited, it notes which processes of p.fds are
// still running (see gone); then it reads standard error to its end.
func (p *prog) wait() string {
	p.t.Helper()
	err := p.cmd.Wait()
	p.waited = true
	for what, fd := range p.fds {
		if !exited(fd, 0) {
			p.alive = append(p.alive, what)
		}
	}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		p.t.Fatal(err)
	}
	select {
	case <-p.errEOF:
	case <-time.After(limit):
		p.t.Errorf("a process still holds multiexit's standard error %v after it exited", limit)
	}
	if s := p.stderr.String(); strings.Contains(s, "DATA RACE") {
		p.t.Errorf("data race:\n%s", s)
	}
	return how(p.cmd.ProcessState)
}

func how(ps *os.ProcessState) string {
	if ws := ps.Sys().(syscall.WaitStatus); ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return fmt.Sprintf("exit %d", ps.ExitCode())
}

// check waits for the tool and fails unless it ended as want.
func (p *prog) check(want string) {
	p.t.Helper()
	if got := p.wait(); got != want {
		p.t.Errorf("ended with %s, want %s\noutput:\n%s\nstderr:\n%s", got, want, strings.Join(p.lines, "\n"), p.stderr.String())
	}
}

// gone fails the test unless every process that pids found had exited
// when multiexit did.
func (p *prog) gone() {
	p.t.Helper()
	if !p.waited {
		p.t.Fatal("gone before wait")
	}
	for _, what := range p.alive {
		p.t.Errorf("%s was still running when multiexit had returned", strings.TrimSpace(what))
	}
}

// exited reports whether the process of pidfd fd has exited within d.
func exited(fd int, d time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(d.Milliseconds()))
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0
	}
}

// runStatus runs multiexit with args to its end, with nothing to read.
func runStatus(t *testing.T, args ...string) (string, string) {
	t.Helper()
	p := start(t, nil, args...)
	p.in.Close()
	for p.sc.Scan() {
		p.lines = append(p.lines, p.sc.Text())
	}
	return p.wait(), p.stderr.String()
}

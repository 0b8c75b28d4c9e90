package proctest

import (
	"bufio"
	"fmt"
	"go.uber.org/goleak"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Lines reads the output of a process tree line by line and keeps every
// line it read, to show them when a test fails.
type Lines struct {
	t    testing.TB
	sc   *bufio.Scanner
	trim string        // cut off the end of each line ("\r" on a terminal)
	more func() string // what else a failure shows (standard error)
	// Seen is every line read so far, in order.
	Seen []string
}

// NewLines reads r for t. A terminal's lines end in "\r\n": trim is "\r"
// there, "" elsewhere.
func NewLines(t testing.TB, r io.Reader, trim string) *Lines {
	return &Lines{t: t, sc: bufio.NewScanner(r), trim: trim}
}

// Next reads one line; false at the end of the output.
func (l *Lines) Next() (string, bool) {
	if !l.sc.Scan() {
		return "", false
	}
	line := strings.TrimRight(l.sc.Text(), l.trim)
	l.Seen = append(l.Seen, line)
	return line, true
}

// Rest reads the output to its end (every process that held it has exited
// or closed it) and returns every line read, these and the earlier ones.
func (l *Lines) Rest() []string {
	for _, ok := l.Next(); ok; _, ok = l.Next() {
	}
	if err := l.sc.Err(); err != nil {
		l.t.Errorf("reading the output: %v (did the run outlast its limit?)", err)
	}
	return l.Seen
}

// fail ends the test: the output ended while it waited for what.
func (l *Lines) fail(what string) {
	l.t.Helper()
	more := ""
	if l.more != nil {
		more = "\nstderr:\n" + l.more()
	}
	l.t.Fatalf("output ended before %s; lines:\n%s%s", what, strings.Join(l.Seen, "\n"), more)
}

// WaitFor reads lines until one starts with prefix, and returns it.
func (l *Lines) WaitFor(prefix string) string {
	l.t.Helper()
	for {
		line, ok := l.Next()
		if !ok {
			l.fail(fmt.Sprintf("a line starting with %q", prefix))
		}
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
}

// WaitAll reads lines until one starting with each prefix was seen, in any
// order, and returns the line seen for each prefix.
func (l *Lines) WaitAll(prefixes ...string) map[string]string {
	l.t.Helper()
	seen := map[string]string{}
	l.each(prefixes, func(pre, line string) { seen[pre] = line })
	return seen
}

// PIDs is WaitAll for lines that end in a PID: it returns the PIDs.
func (l *Lines) PIDs(prefixes ...string) map[string]int {
	l.t.Helper()
	pids := map[string]int{}
	l.each(prefixes, func(pre, line string) { pids[pre] = l.pid(line) })
	return pids
}

// each reads lines until one starting with each prefix was seen, calling
// f with every line that starts with one.
func (l *Lines) each(prefixes []string, f func(prefix, line string)) {
	l.t.Helper()
	seen := map[string]bool{}
	for len(seen) < len(prefixes) {
		line, ok := l.Next()
		if !ok {
			l.fail(fmt.Sprintf("lines starting with each of %q", prefixes))
		}
		for _, pre := range prefixes {
			if strings.HasPrefix(line, pre) {
				seen[pre] = true
				f(pre, line)
			}
		}
	}
}

// pid is the PID at the end of line.
func (l *Lines) pid(line string) int {
	l.t.Helper()
	pid := LastPID(line)
	if pid == 0 {
		l.t.Fatalf("no PID at the end of %q", line)
	}
	return pid
}

// LastPID returns the PID a line ends with, or 0.
func LastPID(line string) int {
	f := strings.Fields(line)
	if len(f) == 0 {
		return 0
	}
	pid, _ := strconv.Atoi(f[len(f)-1])
	return pid
}

// Proc is a test's process: tagged (see Tag), its standard output, shared
// by every process of its tree, read line by line through a pipe, its
// standard error collected in Stderr.
type Proc struct {
	*Lines
	t      testing.TB
	Cmd    *exec.Cmd
	Tag    string // the tag of the process and its tree
	Stderr Buffer
	errEOF chan struct{} // closed when every holder closed standard error
	limit  time.Duration
	waited bool
	fds    map[string]int // pidfds that Watch opened (Linux)
	pids   map[string]int // and the PIDs
	alive  []string       // those still running when the process had exited
}

// Options are Start's.
type Options struct {
	// Tag is the tag the process carries; a new one (Tag(t)) if empty.
	Tag string
	// Limit bounds the run: past it the process is killed and its pipes
	// closed, so that a hang fails the test instead of blocking it. It is
	// a guard, not an assertion; 0 is no limit.
	Limit time.Duration
}

// Start starts cmd for t. It adds the tag to cmd's environment (os.Environ
// if cmd.Env is nil), and GORACE=atexit_sleep_ms=0: a race-enabled binary
// otherwise sleeps a second before it exits 0. cmd's standard output and
// error are Start's; the caller may set up its standard input. The cleanup
// kills the process if the test did not wait for it, and reaps it.
func Start(t testing.TB, cmd *exec.Cmd, o Options) *Proc {
	t.Helper()
	if o.Tag == "" {
		o.Tag = Tag(t)
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, Env(o.Tag), "GORACE=atexit_sleep_ms=0")
	p := &Proc{t: t, Cmd: cmd, Tag: o.Tag, limit: o.Limit, errEOF: make(chan struct{})}
	// Pipes of the test's own, not exec's copying goroutines: Wait returns
	// when the process exits, whoever else holds them.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	er, ew, err := os.Pipe()
	if err != nil {
		r.Close()
		w.Close()
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, ew
	err = start(cmd)
	w.Close()
	ew.Close()
	if err != nil {
		r.Close()
		er.Close()
		t.Fatal(err)
	}
	go func() {
		io.Copy(&p.Stderr, er)
		close(p.errEOF)
	}()
	p.Lines = NewLines(t, r, "")
	p.Lines.more = p.Stderr.String
	guard(t, cmd, o.Limit, &p.waited, func() {
		r.Close()
		er.Close()
		<-p.errEOF
	})
	return p
}

// guard makes t's cleanup kill and reap cmd unless the test waited for it
// (*waited), then call release, which closes the test's ends of cmd's
// pipes. Past limit, if set, it kills cmd and calls release at once: that
// ends any read that a leaked descendant holding a pipe would block.
func guard(t testing.TB, cmd *exec.Cmd, limit time.Duration, waited *bool, release func()) {
	var timer *time.Timer
	if limit > 0 {
		timer = time.AfterFunc(limit, func() {
			cmd.Process.Kill()
			release()
		})
	}
	t.Cleanup(func() {
		if timer != nil {
			timer.Stop()
		}
		if !*waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
		release()
	})
}

// Signal sends sig to the process (only: not to its tree).
func (p *Proc) Signal(sig os.Signal) {
	p.t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// Wait waits for the process and returns how it ended (see How). The
// moment it has exited it notes which watched processes still run (see
// Gone); then it waits for standard error to be closed by every process
// that holds it, within the limit, and fails the test on a data race.
func (p *Proc) Wait() string {
	p.t.Helper()
	err := p.Cmd.Wait()
	p.waited = true
	for what, fd := range p.fds {
		if !exitedNow(fd) {
			p.alive = append(p.alive, what)
		}
	}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		p.t.Fatal(err)
	}
	var timeout <-chan time.Time
	if p.limit > 0 {
		timeout = time.After(p.limit)
	}
	select {
	case <-p.errEOF:
	case <-timeout:
		p.t.Errorf("a process still holds standard error %v after the process exited", p.limit)
	}
	if s := p.Stderr.String(); strings.Contains(s, "DATA RACE") {
		p.t.Errorf("data race:\n%s", s)
	}
	return How(p.Cmd.ProcessState)
}

// End reads the output to its end, waits for the process, and returns every
// line and how the process ended.
func (p *Proc) End() (lines []string, how string) {
	p.t.Helper()
	lines = p.Rest()
	return lines, p.Wait()
}

// Ended fails the test unless how, as End or Wait said it, is want.
func (p *Proc) Ended(how, want string) {
	p.t.Helper()
	if how != want {
		p.t.Errorf("ended with %s, want %s\noutput:\n%s\nstderr:\n%s", how, want, strings.Join(p.Seen, "\n"), p.Stderr.String())
	}
}

// Quiet fails the test if the process wrote to standard error.
func (p *Proc) Quiet() {
	p.t.Helper()
	if s := p.Stderr.String(); s != "" {
		p.t.Errorf("standard error should be empty, got:\n%s", s)
	}
}

// WatchedPID is the PID of the process that Watch found by prefix.
func (p *Proc) WatchedPID(prefix string) int { return p.pids[prefix] }

// Gone fails the test unless every process that Watch found had exited
// when the process did.
func (p *Proc) Gone() {
	p.t.Helper()
	if !p.waited {
		p.t.Fatal("Gone before Wait")
	}
	for _, what := range p.alive {
		p.t.Errorf("%s was still running when the process had exited", strings.TrimSpace(what))
	}
}

// How says how a process ended: "exit N" or "signal S".
func How(ps *os.ProcessState) string {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return fmt.Sprintf("exit %d", ps.ExitCode())
}

// IgnoreForkThread is the goleak option for the goroutine that holds the
// locked OS thread Start forks from (internal/osproc): it lives as long
// as the test binary, by design.
func IgnoreForkThread() goleak.Option {
	return goleak.IgnoreTopFunction("github.com/multiexit/multiexit/internal/osproc.forkLoop")
}

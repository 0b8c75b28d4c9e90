package multiexit_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/multiexit/multiexit/internal/proctest"
)

// The test binary is also every program the tests run: TestMain runs the
// scenario named in MX_SCENARIO instead of the tests. Workers started by a
// scenario inherit MX_SCENARIO and run the same function, so a scenario
// checks multiexit.IsChild (and its arguments) to know its role.
var scenarios = map[string]func(args []string){}

func TestMain(m *testing.M) {
	if name := os.Getenv("MX_SCENARIO"); name != "" {
		f, ok := scenarios[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown scenario %q\n", name)
			os.Exit(98)
		}
		f(os.Args[1:])
		fmt.Fprintf(os.Stderr, "scenario %q returned\n", name)
		os.Exit(97)
	}
	goleak.VerifyTestMain(m)
}

// say writes one line to standard output in one write, so that the lines
// of every process of a tree sharing the pipe never interleave.
func say(format string, args ...any) {
	os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n")
}

// proc is a scenario process: its standard output is read line by line.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	sc     *bufio.Scanner
	lines  []string
	stderr proctest.Buffer
	waited bool
}

// start runs scenario name with args; env adds to the environment.
func start(t *testing.T, name string, args []string, env ...string) *proc {
	t.Helper()
	return startWith(t, nil, name, args, env...)
}

// startWith is start with setup applied to the command first.
func startWith(t *testing.T, setup func(*exec.Cmd), name string, args []string, env ...string) *proc {
	t.Helper()
	tag := proctest.Tag(t)
	cmd := exec.Command(os.Args[0], args...)
	// GORACE: a race-enabled binary otherwise sleeps 1 s before exit 0.
	cmd.Env = append(append(os.Environ(), "MX_SCENARIO="+name, proctest.Env(tag), "GORACE=atexit_sleep_ms=0"), env...)
	if setup != nil {
		setup(cmd)
	}
	p := &proc{t: t, cmd: cmd}
	cmd.Stderr = &p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.sc = bufio.NewScanner(out)
	t.Cleanup(func() {
		if !p.waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return p
}

// waitFor reads lines until one starts with prefix, and returns it.
func (p *proc) waitFor(prefix string) string {
	p.t.Helper()
	for p.sc.Scan() {
		line := p.sc.Text()
		p.lines = append(p.lines, line)
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	p.t.Fatalf("output ended before a line starting with %q; lines: %q; stderr:\n%s", prefix, p.lines, p.stderr.String())
	return ""
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// end reads standard output to its end (every process of the tree that
// held it has exited or closed it), waits for the process, and returns
// the trace (the lines not starting with "ready") and how it ended.
func (p *proc) end() (trace []string, how string) {
	p.t.Helper()
	for p.sc.Scan() {
		p.lines = append(p.lines, p.sc.Text())
	}
	err := p.cmd.Wait()
	p.waited = true
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			p.t.Fatal(err)
		}
	}
	for _, l := range p.lines {
		if !strings.HasPrefix(l, "ready") {
			trace = append(trace, l)
		}
	}
	return trace, describe(p.cmd.ProcessState)
}

func describe(ps *os.ProcessState) string {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return fmt.Sprintf("exit %d", ps.ExitCode())
}

func exitCode(n int) string { return fmt.Sprintf("exit %d", n) }

// diedOf is how a process that sig killed ended, as describe says it.
func diedOf(sig syscall.Signal) string { return "signal " + sig.String() }

// check compares a trace and how the process ended with what was wanted.
func (p *proc) check(wantTrace []string, wantHow string) (trace []string) {
	p.t.Helper()
	trace, how := p.end()
	if diff := cmp.Diff(wantTrace, trace); diff != "" {
		p.t.Errorf("trace (-want +got):\n%s\nstderr:\n%s", diff, p.stderr.String())
	}
	if how != wantHow {
		p.t.Errorf("ended with %s, want %s; stderr:\n%s", how, wantHow, p.stderr.String())
	}
	return trace
}

// quiet fails the test if the process printed anything on standard error.
func (p *proc) quiet() {
	p.t.Helper()
	if s := p.stderr.String(); s != "" {
		p.t.Errorf("standard error should be empty on success, got:\n%s", s)
	}
}

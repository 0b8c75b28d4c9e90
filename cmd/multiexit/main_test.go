//go:build linux

// The tool is tested as a user runs it: built once, run on real process
// trees whose scripts say what they do on standard output (read line by
// line through a pipe), and checked for its status and for what it left:
// every process of a test carries its proctest tag, and none may survive.
package main_test

import (
	"debug/buildinfo"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/multiexit/multiexit/internal/proctest"
)

// bin is the built tool.
var bin string

// TestMain builds the tool once per test process, or takes the one that
// MULTIEXIT_TEST_BIN names (to run these tests against another build: an
// older commit's, one built without cgo). Started with MX_TEST_ROLE set,
// the test binary plays that role instead (see roles).
func TestMain(m *testing.M) {
	if role, ok := os.LookupEnv("MX_TEST_ROLE"); ok {
		os.Exit(roles[role]())
	}
	remove := func() {}
	if bin = os.Getenv("MULTIEXIT_TEST_BIN"); bin == "" {
		var dir string
		dir, remove = proctest.Build(".")
		bin = filepath.Join(dir, "multiexit")
	}
	code := m.Run()
	remove()
	os.Exit(code)
}

// roles are the programs the test binary plays (MX_TEST_ROLE), each
// returning its exit status.
var roles = map[string]func() int{}

// withCgo reports whether the tool was built with cgo: only then does it
// see the signal configuration it was started with whole, and forward
// SIGURG, SIGPROF and signal 34 (see callersig_cgo.go).
func withCgo(t testing.TB) bool {
	t.Helper()
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range info.Settings {
		if s.Key == "CGO_ENABLED" {
			return s.Value == "1"
		}
	}
	return false
}

// needCgo skips t unless the tool was built with cgo.
func needCgo(t testing.TB) {
	t.Helper()
	if !withCgo(t) {
		t.Skip("multiexit was built without cgo: it cannot see the signals its caller ignored or blocked (callersig_nocgo.go); build it with a C compiler")
	}
}

// limit bounds a run that should take well under a second: past it, the
// tool is killed and the test fails. It is a guard, not an assertion.
const limit = 30 * time.Second

// prog is a running multiexit (see proctest.Proc); its standard input is
// a pipe from the test.
type prog struct {
	*proctest.Proc
	t  *testing.T
	in io.WriteCloser
}

// start runs multiexit with args, tagged; env adds to its environment.
func start(t *testing.T, env []string, args ...string) *prog {
	t.Helper()
	return startProgram(t, env, bin, args...)
}

// startProgram is start for any program (one that runs multiexit).
func startProgram(t *testing.T, env []string, name string, args ...string) *prog {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return &prog{Proc: proctest.Start(t, cmd, proctest.Options{Limit: limit}), t: t, in: in}
}

// say writes a line to the tool's standard input (COMMAND's).
func (p *prog) say(line string) {
	p.t.Helper()
	if _, err := io.WriteString(p.in, line+"\n"); err != nil {
		p.t.Fatal(err)
	}
}

// check waits for the tool and fails unless it ended as want.
func (p *prog) check(want string) {
	p.t.Helper()
	p.Ended(p.Wait(), want)
}

// runStatus runs multiexit with args to its end, with nothing to read.
func runStatus(t *testing.T, args ...string) (string, string) {
	t.Helper()
	p := start(t, nil, args...)
	p.in.Close()
	_, how := p.End()
	return how, p.Stderr.String()
}

//go:build linux

// The tool is tested as a user runs it: built once, run on real process
// trees whose scripts say what they do on standard output (read line by
// line through a pipe), and checked for its status and for what it left:
// every process of a test carries its proctest tag, and none may survive.
package main_test

import (
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

// TestMain builds the tool once per test process.
func TestMain(m *testing.M) {
	dir, remove := proctest.Build(".")
	bin = filepath.Join(dir, "multiexit")
	code := m.Run()
	remove()
	os.Exit(code)
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

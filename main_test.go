package multiexit_test

import (
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/multiexit/multiexit/internal/proctest"
)

// The test binary is also every program the tests run: a scenario is a
// function of this package, func(args []string), registered with
// scenario in the file of the tests that run it, and started by them
// (start, startWith, scenarioEnv); TestEveryScenarioIsUsed checks that
// some test or benchmark does. TestMain runs the scenario named in
// MX_SCENARIO instead of the tests; workers started by a scenario inherit
// MX_SCENARIO and run the same function, so a scenario checks
// multiexit.IsChild (and its arguments) to know its role.
var scenarios = map[string]func(args []string){}

// scenarioVar names the scenario a process runs.
const scenarioVar = "MX_SCENARIO"

// scenario registers each f as a scenario under its function's name. It
// panics on anything but a top-level function, and on a name registered
// twice.
func scenario(fs ...func(args []string)) {
	for _, f := range fs {
		name := scenarioName(f)
		if _, dup := scenarios[name]; dup {
			panic("scenario " + name + " registered twice")
		}
		scenarios[name] = f
	}
}

// scenarioName is the name of f, a top-level function of this package.
func scenarioName(f func(args []string)) string {
	full := runtime.FuncForPC(reflect.ValueOf(f).Pointer()).Name()
	name, ok := strings.CutPrefix(full, "github.com/multiexit/multiexit_test.")
	if !ok || strings.Contains(name, ".") {
		panic(fmt.Sprintf("scenario %s: not a top-level function of the test package", full))
	}
	return name
}

// scenarioEnv returns the environment entry that runs f, which must be
// registered.
func scenarioEnv(f func(args []string)) string {
	name := scenarioName(f)
	if _, ok := scenarios[name]; !ok {
		panic("scenario " + name + " is not registered: add it to its file's scenario call")
	}
	return scenarioVar + "=" + name
}

func TestMain(m *testing.M) {
	if name := os.Getenv(scenarioVar); name != "" {
		f, ok := scenarios[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown scenario %q\n", name)
			os.Exit(98)
		}
		f(os.Args[1:])
		fmt.Fprintf(os.Stderr, "scenario %q returned\n", name)
		os.Exit(97)
	}
	goleak.VerifyTestMain(m, proctest.IgnoreForkThread())
}

// say writes one line to standard output in one write, so that the lines
// of every process of a tree sharing the pipe never interleave.
func say(format string, args ...any) {
	os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n")
}

// proc is a scenario process (see proctest.Proc).
type proc struct {
	*proctest.Proc
	t *testing.T
}

// start runs scenario f with args; env adds to the environment.
func start(t *testing.T, f func([]string), args []string, env ...string) *proc {
	t.Helper()
	return startWith(t, nil, f, args, env...)
}

// startWith is start with setup applied to the command first.
func startWith(t *testing.T, setup func(*exec.Cmd), f func([]string), args []string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), scenarioEnv(f)), env...)
	if setup != nil {
		setup(cmd)
	}
	return &proc{Proc: proctest.Start(t, cmd, proctest.Options{}), t: t}
}

// end reads standard output to its end (every process of the tree that
// held it has exited or closed it), waits for the process, and returns
// the trace (the lines not starting with "ready") and how it ended.
func (p *proc) end() (trace []string, how string) {
	p.t.Helper()
	lines, how := p.End()
	for _, l := range lines {
		if !strings.HasPrefix(l, "ready") {
			trace = append(trace, l)
		}
	}
	return trace, how
}

func exitCode(n int) string { return fmt.Sprintf("exit %d", n) }

// check compares a trace and how the process ended with what was wanted.
func (p *proc) check(wantTrace []string, wantHow string) (trace []string) {
	p.t.Helper()
	trace, how := p.end()
	if diff := cmp.Diff(wantTrace, trace); diff != "" {
		p.t.Errorf("trace (-want +got):\n%s\nstderr:\n%s", diff, p.Stderr.String())
	}
	if how != wantHow {
		p.t.Errorf("ended with %s, want %s; stderr:\n%s", how, wantHow, p.Stderr.String())
	}
	return trace
}

package main_test

// The programs multiexit replaces have test suites of their own: tini's
// test/run_inner_tests.py and run_outer_tests.py, dumb-init's tests/,
// coreutils' tests/timeout, and catatonit's documented behaviour (it has no
// tests). Their assertions about what multiexit also does are adapted
// here into Go tests (TestTini*, TestDumbInit*, TestCatatonit*,
// TestTimeout*), each run against multiexit and, as a control, against the
// peer itself where it is installed (Debian: tini, dumb-init, catatonit,
// coreutils; .ci/run installs them). Where multiexit differs on purpose,
// the test asserts each tool's own behaviour, and docs/cli.md's comparison
// table and -h say why.

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"

	"github.com/multiexit/multiexit/internal/proctest"
	"golang.org/x/sys/unix"
)

// tool is a program that runs a COMMAND: multiexit or a peer.
type tool struct {
	name string
	argv []string // its command line before COMMAND
}

// command is tl's command line that runs command.
func (tl tool) command(command ...string) []string {
	return append(append([]string(nil), tl.argv...), command...)
}

func (tl tool) isMultiexit() bool { return tl.name == "multiexit" }

// bare runs COMMAND itself: the control of a test of what COMMAND inherits.
var bare = tool{name: "bare"}

// mx is multiexit with flags; a grace period of an hour keeps it from
// killing a COMMAND that outlives a SIGTERM, as the peers never do.
func mx(flags ...string) tool {
	if len(flags) == 0 {
		flags = []string{"-grace", "1h"}
	}
	return tool{"multiexit", append(append([]string{bin}, flags...), "--")}
}

func tini(flags ...string) tool {
	return tool{"tini", append(append([]string{"tini", "-s"}, flags...), "--")}
}

func dumbInit(flags ...string) tool {
	return tool{"dumb-init", append([]string{"dumb-init"}, flags...)}
}

func catatonit(flags ...string) tool {
	return tool{"catatonit", append(append([]string{"catatonit"}, flags...), "--")}
}

// each runs f for each tool, as parallel subtests named after the tools; a
// peer that is not installed is skipped.
func each(t *testing.T, tools []tool, f func(t *testing.T, tl tool)) {
	t.Helper()
	for _, tl := range tools {
		t.Run(tl.name, func(t *testing.T) {
			t.Parallel()
			if !tl.isMultiexit() && len(tl.argv) > 0 {
				if _, err := exec.LookPath(tl.argv[0]); err != nil {
					t.Skipf("%s is not installed (Debian: apt-get install -y tini dumb-init catatonit)", tl.argv[0])
				}
			}
			f(t, tl)
		})
	}
}

// startTool runs tl with command, tagged, with env added to its
// environment; its standard input is the test's to write (say).
func startTool(t *testing.T, tl tool, env []string, command ...string) *prog {
	t.Helper()
	argv := tl.command(command...)
	return startProgram(t, env, argv[0], argv[1:]...)
}

// asPID1 is argv run as PID 1 of a new PID namespace (a container's init),
// or a skip of t where that cannot be made.
func asPID1(t *testing.T, argv []string) []string {
	t.Helper()
	if err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").Run(); err != nil {
		t.Skipf("cannot make a PID namespace: %v", err)
	}
	return append([]string{"unshare", "--pid", "--fork", "--mount-proc"}, argv...)
}

// init1 is the PID, in this namespace, of the PID 1 that unshare (p)
// started: its only child.
func init1(t *testing.T, p *prog) int {
	t.Helper()
	pid := p.Cmd.Process.Pid
	kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	var child int
	if _, err2 := fmt.Sscan(string(kids), &child); err != nil || err2 != nil {
		t.Fatalf("unshare's child: %q, %v, %v", kids, err, err2)
	}
	return child
}

// python is the path of a python3 for COMMANDs written in Python (Debian's
// own if there is one: other users can run it, and it starts faster than
// a version manager's shim), or a skip of t.
func python(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	return p
}

// printSignals is a COMMAND that says "got N" for each signal N it gets
// (all it can catch), after "ready PID"; a line "exit N" on its standard
// input ends it with status N, and at the end of its input it waits for
// signals for ever. (After dumb-init's testing/print_signals.py.) It waits
// in select(2) on its input and on the wakeup descriptor Python's signal
// handler writes to: a blocking read would miss a signal that came just
// before it (Python runs its handlers between bytecodes, not in a read).
const printSignals = `import os, select, signal, sys
def got(sig, frame):
    os.write(1, b"got %d\n" % sig)
for sig in range(1, 65):
    if sig not in (signal.SIGKILL, signal.SIGSTOP, 32, 33):
        try:
            signal.signal(sig, got)
        except (OSError, ValueError):
            pass
` + waitInput + `os.write(1, b"ready %d\n" % os.getpid())
wait_input()
`

// waitInput defines wait_input() for a Python COMMAND that catches
// signals: it runs their handlers as they come, ends the program with
// status N at a line "exit N" on its standard input, and after the end of
// that input waits for signals for ever.
const waitInput = `def wait_input():
    r, w = os.pipe()
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w)
    fds, buf = [0, r], b""
    while True:
        ready, _, _ = select.select(fds, [], [])
        if r in ready:
            os.read(r, 512)
        if 0 in ready:
            data = os.read(0, 512)
            if not data:
                fds = [r]
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.startswith(b"exit "):
                    sys.exit(int(line.split()[1]))
`

// sigLauncher is a Python program that ignores the signals IGNORE and
// blocks the signals BLOCK (numbers, comma-separated, in its environment)
// and executes its arguments, as tini's test/sigconf/sigconf-test.c does.
const sigLauncher = `import os, signal, sys
for n in filter(None, os.environ.pop("IGNORE").split(",")):
    signal.signal(int(n), signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_BLOCK, [int(n) for n in filter(None, os.environ.pop("BLOCK").split(","))])
os.execvp(sys.argv[1], sys.argv[1:])`

// killLeftovers kills what p's tree left running (a peer's leftovers,
// which it documents) before the test's end checks for survivors, and
// returns how many there were.
func killLeftovers(p *prog) int {
	left := proctest.Survivors(p.Tag)
	for _, s := range left {
		syscall.Kill(s.PID, syscall.SIGKILL)
	}
	for _, s := range left {
		proctest.WaitExited(s.PID)
	}
	return len(left)
}

// signalName is sig as the tests name it: SIGTERM, SIGRT34.
func signalName(sig syscall.Signal) string {
	if sig >= 34 {
		return "SIGRT" + strconv.Itoa(int(sig))
	}
	return unix.SignalName(sig)
}

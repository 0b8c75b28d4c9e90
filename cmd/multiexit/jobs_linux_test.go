package main_test

import (
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/multiexit/multiexit/internal/proctest"
)

// Job control: multiexit runs in an interactive bash as a bare command
// does. COMMAND (reader) says its PID and multiexit's, then reads a line of
// the terminal and says what it got; every step waits for what the
// terminal shows. Where the stop signal matters, bash runs in POSIX mode,
// in which it names the signal that stopped a job ("Stopped(SIGTTIN)"; by
// default it says "Stopped" whatever the signal).

// reader is COMMAND for these tests.
const reader = `sh -c 'echo "pids $PPID $$"; read l; echo "got $l"'`

// pids reads the line in which reader names multiexit and itself.
func pids(t *testing.T, sh *proctest.Shell) (mx, cmd int) {
	t.Helper()
	m := sh.Expect(`pids (\d+) (\d+)`)
	mx, _ = strconv.Atoi(m[1])
	cmd, _ = strconv.Atoi(m[2])
	return mx, cmd
}

// bothStopped fails the test unless multiexit and COMMAND are stopped.
func bothStopped(t *testing.T, mx, cmd int) {
	t.Helper()
	if s, c := proctest.State(mx), proctest.State(cmd); s != "T" || c != "T" {
		t.Errorf("after the shell said Stopped: multiexit in state %q, COMMAND in state %q; want both T", s, c)
	}
}

// readsAfterFg brings job 1 to the foreground and checks that COMMAND
// reads the terminal, and that the job ends with status 0.
func readsAfterFg(t *testing.T, sh *proctest.Shell) {
	t.Helper()
	sh.Fg()
	sh.Type("typed after fg\r")
	if got := sh.Line("got "); got != "typed after fg" {
		t.Errorf("COMMAND read %q after fg", got)
	}
	sh.Prompt()
	if st := sh.Status(); st != "0" {
		t.Errorf("status %s after fg, want 0", st)
	}
}

// Ctrl-Z stops COMMAND and multiexit with it: bash says "Stopped" and
// gives its prompt back; fg resumes both, and COMMAND has the terminal
// again.
func TestJobCtrlZThenFg(t *testing.T) {
	t.Parallel()
	sh := proctest.StartShell(t, nil, proctest.Options{})
	sh.Run(bin + " -- " + reader)
	mx, cmd := pids(t, sh)
	sh.Type("\x1a") // Ctrl-Z
	sh.Stopped(1, "Stopped")
	sh.Prompt()
	bothStopped(t, mx, cmd)
	readsAfterFg(t, sh)
	sh.Exit()
}

// Ctrl-C after fg ends the job as it ends a bare command: status 130.
func TestJobCtrlCAfterFg(t *testing.T) {
	t.Parallel()
	sh := proctest.StartShell(t, nil, proctest.Options{})
	sh.Run(bin + ` -- sh -c 'echo "pids $PPID $$"; read l; echo "got $l"; read l; echo "not interrupted"'`)
	pids(t, sh)
	sh.Type("\x1a")
	sh.Stopped(1, "Stopped")
	sh.Prompt()
	sh.Fg()
	sh.Type("first\r")
	sh.Line("got first") // COMMAND is reading again: it has the terminal
	sh.Type("\x03")      // Ctrl-C
	sh.Prompt()
	if st := sh.Status(); st != "130" {
		t.Errorf("status %s after Ctrl-C, want 130 (death by SIGINT)", st)
	}
	sh.Exit()
}

// bg continues the job in the background: COMMAND goes back to its read of
// the terminal, which stops it (SIGTTIN), and multiexit with it, as bash
// reports at once (set -b); fg then gives it the terminal.
func TestJobCtrlZThenBg(t *testing.T) {
	t.Parallel()
	sh := proctest.StartShell(t, nil, proctest.Options{})
	sh.Run("set -b -o posix")
	sh.Prompt()
	sh.Run(bin + " -- " + reader)
	mx, cmd := pids(t, sh)
	sh.Type("\x1a")
	sh.Stopped(1, "Stopped(SIGTSTP)")
	sh.Prompt()
	sh.Run("bg")
	sh.Stopped(1, "Stopped(SIGTTIN)")
	bothStopped(t, mx, cmd)
	readsAfterFg(t, sh)
	sh.Exit()
}

// Started in the background (&), COMMAND's read of the terminal stops the
// job; fg gives COMMAND the terminal.
func TestJobBackgroundThenFg(t *testing.T) {
	t.Parallel()
	sh := proctest.StartShell(t, nil, proctest.Options{})
	sh.Run("set -b -o posix")
	sh.Prompt()
	sh.Run(bin + " -- " + reader + " &")
	mx, cmd := pids(t, sh)
	sh.Stopped(1, "Stopped(SIGTTIN)")
	bothStopped(t, mx, cmd)
	readsAfterFg(t, sh)
	sh.Exit()
}

// In a pipeline, Ctrl-Z stops the other commands of multiexit's job too
// (bash shows the job stopped only when every process of it is): here
// cat, which COMMAND's output goes through.
func TestJobPipelineCtrlZ(t *testing.T) {
	t.Parallel()
	sh := proctest.StartShell(t, nil, proctest.Options{})
	// COMMAND's first line comes through the pipe to the sibling, which
	// adds its own PID.
	sh.Run(bin + " -- " + reader + ` | sh -c 'read first; echo "sibling $$ $first"; exec cat'`)
	m := sh.Expect(`sibling (\d+) pids (\d+) (\d+)`)
	sib, _ := strconv.Atoi(m[1])
	mx, _ := strconv.Atoi(m[2])
	cmd, _ := strconv.Atoi(m[3])
	sh.Type("\x1a")
	sh.Stopped(1, "Stopped")
	sh.Prompt()
	bothStopped(t, mx, cmd)
	if s := proctest.State(sib); s != "T" {
		t.Errorf("cat, in multiexit's pipeline, in state %q; want T", s)
	}
	readsAfterFg(t, sh)
	sh.Exit()
}

// A stop signal sent to multiexit stops COMMAND's group, and multiexit
// with it by the same signal; fg resumes both.
func TestJobStopSignalToMultiexit(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		sig   syscall.Signal
		words string // bash's
	}{
		{syscall.SIGTSTP, "Stopped(SIGTSTP)"},
		{syscall.SIGTTIN, "Stopped(SIGTTIN)"},
		{syscall.SIGTTOU, "Stopped(SIGTTOU)"},
	} {
		t.Run(unix.SignalName(c.sig), func(t *testing.T) {
			t.Parallel()
			sh := proctest.StartShell(t, nil, proctest.Options{})
			sh.Run("set -o posix")
			sh.Prompt()
			sh.Run(bin + " -- " + reader)
			mx, cmd := pids(t, sh)
			if err := syscall.Kill(mx, c.sig); err != nil {
				t.Fatal(err)
			}
			sh.Stopped(1, c.words)
			sh.Prompt()
			bothStopped(t, mx, cmd)
			readsAfterFg(t, sh)
			sh.Exit()
		})
	}
}

package main_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/multiexit/multiexit/internal/proctest"
)

// startTerm runs multiexit with args as a session leader on a new
// pseudo-terminal, as a shell in a terminal window runs it (see
// proctest.Term).
func startTerm(t *testing.T, args ...string) *proctest.Term {
	t.Helper()
	return proctest.StartTerm(t, exec.Command(bin, args...), proctest.Options{Limit: limit})
}

// Ctrl-C typed in the terminal stops the tree: COMMAND, in the terminal's
// foreground, dies by SIGINT, so does multiexit (as a shell expects of a
// Ctrl-C'd program), and the background job (a non-interactive shell's
// background jobs ignore SIGINT) and the escapee are stopped after it.
func TestTerminalCtrlC(t *testing.T) {
	t.Parallel()
	tm := startTerm(t, "-grace", "100ms", "--", "sh", "-c",
		`sleep 1000 & echo "job $!"; setsid sh -c 'echo "escapee $$"; exec sleep 1000' & wait`)
	fds := map[string]int{}
	for what, pid := range tm.PIDs("job ", "escapee ") {
		fds[what] = proctest.Pidfd(t, pid)
	}
	tm.Type("\x03")
	tm.Ended(tm.Wait(), "signal interrupt")
	for what, fd := range fds {
		if !proctest.Exited(fd, 0) {
			t.Errorf("the %s was still running when multiexit had returned", strings.TrimSpace(what))
		}
	}
}

// An interactive COMMAND gets the terminal's foreground: it reads a line
// typed in the terminal (echo is off, so what shows is what it printed),
// and exits as it would in a shell.
func TestTerminalInteractive(t *testing.T) {
	t.Parallel()
	tm := startTerm(t, "--", "head", "-1")
	tm.Type("typed by the test\r")
	tm.WaitFor("typed by the test")
	tm.Ended(tm.Wait(), "exit 0")
}

// With no shell to continue it (multiexit leads its session, as in a
// container's terminal: its group is orphaned), Ctrl-Z stops nothing for
// good, as the kernel discards it for a bare command in an orphaned group:
// COMMAND is continued and goes on reading the terminal.
func TestTerminalCtrlZWithoutAShell(t *testing.T) {
	t.Parallel()
	tm := startTerm(t, "--", "sh", "-c", `echo ready; read l; echo "got $l"`)
	tm.WaitFor("ready")
	tm.Type("\x1a") // Ctrl-Z
	tm.Type("after the stop\r")
	tm.WaitFor("got after the stop")
	tm.Ended(tm.Wait(), "exit 0")
}

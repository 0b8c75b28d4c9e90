package multiexit_test

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/multiexit/multiexit"
	"github.com/multiexit/multiexit/internal/proctest"
)

func init() { scenario(terminal) }

// terminal runs, on its terminal, a child that reads it (head -1) and one
// that the terminal's Ctrl-C stops, each started in the foreground.
func terminal(args []string) {
	mustInstall()
	run := func(name string, argv ...string) {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdin, cmd.Stdout = os.Stdin, os.Stdout
		if args[0] == "foreground" {
			multiexit.Foreground(cmd)
		}
		kids := mustStart(cmd)
		say("ready %s", name)
		say("%s: %v", name, kids[0].Wait())
	}
	run("head", "head", "-1")
	run("sleep", "sleep", "1000")
	pgrp, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	say("foreground back: %v %v", pgrp == unix.Getpgrp(), err)
	multiexit.Exit(0)
}

// A child started with Foreground reads the terminal (a line typed there
// reaches head -1), and the terminal's Ctrl-C reaches it; when it exits,
// the parent has the foreground back.
func TestForegroundChildUsesTheTerminal(t *testing.T) {
	cmd := exec.Command(os.Args[0], "foreground")
	cmd.Env = append(os.Environ(), scenarioEnv(terminal))
	// The limit only turns a hang into a failure; nothing is timed.
	tm := proctest.StartTerm(t, cmd, proctest.Options{Limit: time.Minute})
	tm.WaitFor("ready head")
	tm.Type("a typed line\n")
	tm.WaitFor("head: <nil>")
	tm.WaitFor("ready sleep")
	tm.Type("\x03") // Ctrl-C
	tm.WaitFor("sleep: signal: interrupt")
	tm.WaitFor("foreground back: true <nil>")
	tm.Ended(tm.Wait(), "exit 0")
	// Echo is off: the line shows only if head printed it.
	seen := tm.Seen
	if !slices.Contains(seen, "a typed line") {
		t.Errorf("head did not print the typed line: %q", seen)
	}
}

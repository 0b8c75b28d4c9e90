package multiexit_test

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"golang.org/x/sys/unix"

	"github.com/multiexit/multiexit"
	"github.com/multiexit/multiexit/internal/proctest"
)

func init() { scenario(terminal, foregroundJob, foregroundWorker) }

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

// foregroundJob runs, in its terminal, a child started with Foreground
// that says its parent's PID and its own, reads a line and says it.
func foregroundJob([]string) {
	mustInstall()
	cmd := exec.Command("sh", "-c", `echo "pids $PPID $$"; read l; echo "got $l"`)
	cmd.Stdin, cmd.Stdout = os.Stdin, os.Stdout
	kids := mustStart(multiexit.Foreground(cmd))
	say("child: %v", kids[0].Wait())
	multiexit.Exit(0)
}

// Started with Foreground, a child and its parent are one job of the
// shell: Ctrl-Z stops the child, and the parent with it, so that bash
// says "Stopped" and gives its prompt back; fg continues both and gives
// the child the terminal again.
func TestForegroundJobControl(t *testing.T) {
	sh := proctest.StartShell(t, []string{scenarioEnv(foregroundJob), "MX_PROG=" + os.Args[0]}, proctest.Options{})
	sh.Run(`"$MX_PROG"`)
	m := sh.Expect(`pids (\d+) (\d+)`)
	parent, _ := strconv.Atoi(m[1])
	child, _ := strconv.Atoi(m[2])
	sh.Type("\x1a") // Ctrl-Z
	sh.Stopped(1, "Stopped")
	sh.Prompt()
	if p, c := proctest.State(parent), proctest.State(child); p != "T" || c != "T" {
		t.Errorf("after the shell said Stopped: the parent in state %q, the child in state %q; want both T", p, c)
	}
	sh.Fg()
	sh.Type("typed after fg\r")
	sh.Line("got typed after fg")
	sh.Line("child: <nil>")
	sh.Prompt()
	if st := sh.Status(); st != "0" {
		t.Errorf("status %s, want 0", st)
	}
	sh.Exit()
}

// foregroundWorker starts a worker with Foreground and waits; each worker
// registers a hook and says it is ready. args: the worker's signals
// ("default", or "sigint": WithSignals(SIGINT, SIGTERM)), and how deep
// the chain of Foreground workers goes.
func foregroundWorker(args []string) {
	mode, depth := args[0], args[1]
	level := 0
	if multiexit.IsChild() {
		level, _ = strconv.Atoi(args[2])
		if mode == "sigint" {
			mustInstall(multiexit.WithSignals(os.Interrupt, syscall.SIGTERM))
		} else {
			mustInstall()
		}
		multiexit.Register(func(context.Context) error { say("worker %d hook", level); return nil })
	} else {
		mustInstall()
		multiexit.Register(func(context.Context) error { say("parent hook"); return nil })
	}
	if n, _ := strconv.Atoi(depth); level < n {
		mustStart(multiexit.Foreground(multiexit.Command(mode, depth, strconv.Itoa(level+1))))
	}
	say("ready %d", level)
	select {}
}

// Ctrl-C while a Foreground worker holds the terminal ends the tree in
// order, as a shell's Ctrl-C ends a job: the worker passes the terminal's
// SIGINT to its parent, which stops it and runs its own hooks after, and
// dies by SIGINT. Through two Foreground workers too.
func TestForegroundWorkerCtrlC(t *testing.T) {
	for _, c := range []struct {
		name, mode, depth string
		want              []string
	}{
		{"worker", "default", "1", []string{"worker 1 hook", "parent hook"}},
		{"worker catching SIGINT", "sigint", "1", []string{"worker 1 hook", "parent hook"}},
		{"two levels", "default", "2", []string{"worker 2 hook", "worker 1 hook", "parent hook"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], c.mode, c.depth)
			cmd.Env = append(os.Environ(), scenarioEnv(foregroundWorker))
			// The limit only turns a hang into a failure; nothing is timed.
			tm := proctest.StartTerm(t, cmd, proctest.Options{Limit: time.Minute})
			tm.WaitFor("ready " + c.depth)
			tm.Type("\x03") // Ctrl-C
			var hooks []string
			for _, l := range tm.Rest() {
				if len(l) > 5 && l[len(l)-5:] == " hook" {
					hooks = append(hooks, l)
				}
			}
			if diff := cmp.Diff(c.want, hooks); diff != "" {
				t.Errorf("hooks (-want +got):\n%s", diff)
			}
			tm.Ended(tm.Wait(), "signal interrupt")
		})
	}
}

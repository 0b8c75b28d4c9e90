package multiexit_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/windows"

	"github.com/multiexit/multiexit"
)

// The Windows tests. Wine runs them too (see .ci/wine.sh), except that it
// refuses console control events: the tests that need one skip, saying so.
// A scenario's parent cannot be sent a signal there, so the tests ask it to
// exit by closing its standard input (see startFed).

func init() { scenario(winCascade, winTree, winSleep, winExternal, winBreakable, winEnv, winPrintenv) }

// exitOnStdinEOF calls Exit(0) when the test closes standard input.
func exitOnStdinEOF() {
	go func() {
		io.Copy(io.Discard, os.Stdin)
		multiexit.Exit(0)
	}()
}

// scenarioCmd runs this test binary as scenario f, a plain process (not
// a worker), with args.
func scenarioCmd(f func([]string), args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), scenarioEnv(f))
	cmd.Stdout = os.Stdout
	return cmd
}

// startFed is start with a pipe on the scenario's standard input; closing
// it asks the scenario's parent to exit (exitOnStdinEOF).
func startFed(t *testing.T, f func([]string), args []string, env ...string) (p *proc, closeStdin func()) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p = startWith(t, func(cmd *exec.Cmd) { cmd.Stdin = r }, f, args, env...)
	r.Close()
	t.Cleanup(func() { w.Close() })
	return p, func() { w.Close() }
}

// holdProcesses opens the processes, so that their IDs cannot be reused
// while the test looks at them.
func holdProcesses(t *testing.T, pids map[string]int) map[string]windows.Handle {
	t.Helper()
	hs := map[string]windows.Handle{}
	for name, pid := range pids {
		h, err := windows.OpenProcess(windows.SYNCHRONIZE|windows.PROCESS_TERMINATE|windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
		if err != nil {
			t.Fatalf("OpenProcess(%s, pid %d): %v", name, pid, err)
		}
		hs[name] = h
		t.Cleanup(func() { windows.CloseHandle(h) })
	}
	return hs
}

// goneWithin is the bound on how long the job takes to kill a tree; only a
// failing test waits that long.
const goneWithin = 60 * time.Second

// requireGone fails the test for every process still running after
// goneWithin, and terminates it.
func requireGone(t *testing.T, hs map[string]windows.Handle) {
	t.Helper()
	deadline := time.Now().Add(goneWithin)
	for name, h := range hs {
		left := time.Until(deadline)
		if left < 0 {
			left = 0
		}
		ev, err := windows.WaitForSingleObject(h, uint32(left/time.Millisecond))
		if ev == windows.WAIT_OBJECT_0 {
			continue
		}
		t.Errorf("%s survived (wait: %#x, %v); terminating it", name, ev, err)
		windows.TerminateProcess(h, 1)
	}
}

// winCascade: main registers S, its own hook and a report of w1's end,
// starts w1, registers L; w1 does the same with w2 (and inherits S, not L).
func winCascade(args []string) {
	mustInstall()
	me := role()
	var kids []*multiexit.Child
	report := func(context.Context) error {
		say("%s: child ended with %v", me, kids[0].Wait())
		return nil
	}
	switch me {
	case "main":
		sharedS.Register("s")
		multiexit.Register(own)
		multiexit.Register(report)
		kids = mustStart(multiexit.Command("w1"))
		sharedL.Register(7)
		exitOnStdinEOF()
	case "w1":
		multiexit.Register(own)
		multiexit.Register(report)
		kids = mustStart(multiexit.Command("w2"))
	case "w2":
		multiexit.Register(own)
	}
	sayReady(me)
	select {}
}

var winCascadeOrder = []string{
	"main L(7)",
	"w2 own", "w2 S(s)",
	"w1: child ended with exit status 143",
	"w1 own", "w1 S(s)",
	"main: child ended with exit status 143",
	"main own", "main S(s)",
}

// Workers inherit the shared hooks active when they were started, and are
// stopped through their control channel, in LIFO order: each exits with 143
// after its own hooks.
func TestWindowsCascade(t *testing.T) {
	p, stop := startFed(t, winCascade, nil)
	p.PIDs("ready main ", "ready w1 ", "ready w2 ")
	stop()
	p.check(winCascadeOrder, exitCode(0))
	p.Quiet()
}

// winTree: a tree for the job object: main starts worker a and an external
// child through Start, and an untracked process with exec.Cmd.Start; a
// starts an untracked process too. Only the job can stop those two.
func winTree(args []string) {
	mustInstall(multiexit.WithGrace(300 * time.Millisecond))
	switch role() {
	case "main":
		sharedS.Register("s")
		mustStart(multiexit.Command("a"), scenarioCmd(winSleep, "ext"))
		if err := scenarioCmd(winSleep, "main-untracked").Start(); err != nil {
			say("untracked: %v", err)
		}
		if args[0] == "exit" {
			exitOnStdinEOF()
		}
	case "a":
		multiexit.Register(own)
		if err := scenarioCmd(winSleep, "a-untracked").Start(); err != nil {
			say("untracked: %v", err)
		}
	}
	sayReady(role())
	select {}
}

// winSleep: a plain program that runs until it is killed. It blocks in a
// timer, not in select {}: with no signal handling, the runtime would see a
// deadlock and exit.
func winSleep(args []string) {
	sayReady(args[0])
	for {
		time.Sleep(time.Hour)
	}
}

// The parent dies without running anything (TerminateProcess): the worker
// sees EOF on its control channel and runs its hooks, and then the job kills
// what is left: the external child and the untracked processes, main's and
// the worker's.
func TestWindowsJobKillsTreeWhenParentIsKilled(t *testing.T) {
	p, _ := startFed(t, winTree, []string{"kill"})
	pids := p.PIDs("ready main ", "ready a ", "ready ext ", "ready main-untracked ", "ready a-untracked ")
	delete(pids, "ready main ")
	hs := holdProcesses(t, pids)
	if err := p.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	requireGone(t, hs)
	trace, how := p.end()
	if how != exitCode(1) {
		t.Errorf("parent ended with %s, want exit 1 (TerminateProcess)", how)
	}
	if diff := cmp.Diff([]string{"a own", "a S(s)"}, trace); diff != "" {
		t.Errorf("the worker's hooks (-want +got):\n%s\nstderr:\n%s", diff, p.Stderr.String())
	}
}

// The parent exits: it stops its children in order, and the job kills the
// processes that Start does not track.
func TestWindowsJobKillsTreeWhenParentExits(t *testing.T) {
	p, stop := startFed(t, winTree, []string{"exit"})
	pids := p.PIDs("ready main ", "ready a ", "ready ext ", "ready main-untracked ", "ready a-untracked ")
	hs := holdProcesses(t, pids)
	stop()
	requireGone(t, hs)
	p.check([]string{"a own", "a S(s)", "main S(s)"}, exitCode(0))
}

// winExternal: hooks H1 and H2 around an external child, winBreakable
// args[0].
func winExternal(args []string) {
	mustInstall(multiexit.WithGrace(500 * time.Millisecond))
	multiexit.Register(hook("H1"))
	mustStart(scenarioCmd(winBreakable, args[0]))
	multiexit.Register(hook("H2"))
	exitOnStdinEOF()
	sayReady("main")
	select {}
}

// winBreakable is winExternal's child: it stops on CTRL_BREAK_EVENT through
// its hook ("graceful"), or catches and drops it ("stubborn").
func winBreakable(args []string) {
	if args[0] == "stubborn" {
		signal.Notify(make(chan os.Signal, 1), os.Interrupt)
	} else {
		mustInstall()
		multiexit.Register(hook("E stopped"))
	}
	sayReady("ext")
	select {}
}

func TestWindowsExternalChild(t *testing.T) {
	t.Run("stubborn: terminated after the grace period", func(t *testing.T) {
		p, stop := startFed(t, winExternal, []string{"stubborn"})
		p.PIDs("ready main ", "ready ext ")
		stop()
		p.check([]string{"H2", "H1"}, exitCode(0))
		if !strings.Contains(p.Stderr.String(), "did not stop within its grace period") {
			t.Errorf("the termination is not reported:\n%s", p.Stderr.String())
		}
	})
	t.Run("graceful: CTRL_BREAK_EVENT runs its hooks", func(t *testing.T) {
		p, stop := startFed(t, winExternal, []string{"graceful"})
		p.PIDs("ready main ", "ready ext ")
		stop()
		trace, how := p.end()
		if how != exitCode(0) {
			t.Errorf("ended with %s; stderr:\n%s", how, p.Stderr.String())
		}
		if s := p.Stderr.String(); strings.Contains(s, "cannot send CTRL_BREAK_EVENT") {
			if diff := cmp.Diff([]string{"H2", "H1"}, trace); diff != "" {
				t.Errorf("trace (-want +got):\n%s", diff)
			}
			t.Skipf("console control events are unavailable here (Wine refuses them); the child was terminated after the grace period instead:\n%s", s)
		}
		if diff := cmp.Diff([]string{"H2", "E stopped", "H1"}, trace); diff != "" {
			t.Errorf("trace (-want +got):\n%s\nstderr:\n%s", diff, p.Stderr.String())
		}
	})
}

// Ctrl-Break, as Go delivers it (os.Interrupt), runs the hooks and exits
// with 130.
func TestWindowsCtrlBreakRunsHooksLIFO(t *testing.T) {
	p := startWith(t, func(cmd *exec.Cmd) {
		cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: windows.CREATE_NEW_PROCESS_GROUP}
	}, lifo, nil)
	p.WaitFor("ready")
	if err := windows.GenerateConsoleCtrlEvent(windows.CTRL_BREAK_EVENT, uint32(p.Cmd.Process.Pid)); err != nil {
		t.Skipf("console control events are unavailable here (Wine refuses them): GenerateConsoleCtrlEvent: %v", err)
	}
	p.check([]string{"C", "B", "A"}, exitCode(130))
	p.Quiet()
}

// winEnv: a worker says what it and its plain child (winPrintenv) see of
// MULTIEXIT, and IsChild.
func winEnv(args []string) {
	mustInstall()
	if role() == "main" {
		kids := mustStart(multiexit.Command("w"))
		say("worker ended with %v", kids[0].Wait())
		multiexit.Exit(0)
	}
	grandchild := scenarioCmd(winPrintenv)
	grandchild.Stdout = nil
	out, err := grandchild.Output()
	if err != nil {
		say("grandchild: %v", err)
	}
	say("%s", strings.TrimSpace(string(out)))
	say("worker sees MULTIEXIT set: %v", os.Getenv(multiexit.EnvVar) != "")
	say("IsChild: %v", multiexit.IsChild())
	multiexit.Exit(0)
}

// winPrintenv: winEnv's worker's child: a plain process.
func winPrintenv([]string) {
	v, ok := os.LookupEnv(multiexit.EnvVar)
	if !ok {
		v = "unset"
	}
	say("grandchild sees MULTIEXIT=%s, IsChild %v", v, multiexit.IsChild())
	os.Exit(0)
}

func TestWindowsWorkerEnvironment(t *testing.T) {
	p := start(t, winEnv, nil)
	p.check([]string{
		"grandchild sees MULTIEXIT=unset, IsChild false",
		"worker sees MULTIEXIT set: false",
		"IsChild: true",
		"worker ended with <nil>",
	}, exitCode(0))
	p.Quiet()
}

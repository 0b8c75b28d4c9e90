package multiexit_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
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

// winS and winL print the role of the process they run in.
var (
	winS = multiexit.Define("win-S", func(ctx context.Context, arg string) error {
		say("%s S(%s)", winRole(), arg)
		return nil
	})
	winL = multiexit.Define("win-L", func(ctx context.Context, arg int) error {
		say("%s L(%d)", winRole(), arg)
		return nil
	})
)

// winRole is "main" in the process the test started, else the worker's
// first argument.
func winRole() string {
	if !multiexit.IsChild() || len(os.Args) < 2 {
		return "main"
	}
	return os.Args[1]
}

func winOwn(context.Context) error {
	say("%s own", winRole())
	return nil
}

func winInstall(opts ...multiexit.Option) {
	if err := multiexit.Install(opts...); err != nil {
		say("install error: %v", err)
		multiexit.Exit(1)
	}
}

func winStart(cmds ...*exec.Cmd) []*multiexit.Child {
	kids, err := multiexit.Start(cmds...)
	if err != nil {
		say("start error: %v", err)
		multiexit.Exit(1)
	}
	return kids
}

// exitOnStdinEOF calls Exit(0) when the test closes standard input.
func exitOnStdinEOF() {
	go func() {
		io.Copy(io.Discard, os.Stdin)
		multiexit.Exit(0)
	}()
}

// scenarioCmd runs this test binary as scenario name, a plain process (not
// a worker), with args.
func scenarioCmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "MX_SCENARIO="+name)
	cmd.Stdout = os.Stdout
	return cmd
}

// sayReady prints "ready NAME PID".
func sayReady(name string) { say("ready %s %d", name, os.Getpid()) }

func init() {
	// main registers S, its own hook and a report of w1's end, starts w1,
	// registers L; w1 does the same with w2 (and inherits S, not L).
	scenarios["win-cascade"] = func(args []string) {
		winInstall()
		role := winRole()
		var kids []*multiexit.Child
		report := func(context.Context) error {
			say("%s: child ended with %v", role, kids[0].Wait())
			return nil
		}
		switch role {
		case "main":
			winS.Register("s")
			multiexit.Register(winOwn)
			multiexit.Register(report)
			kids = winStart(multiexit.Command("w1"))
			winL.Register(7)
			exitOnStdinEOF()
		case "w1":
			multiexit.Register(winOwn)
			multiexit.Register(report)
			kids = winStart(multiexit.Command("w2"))
		case "w2":
			multiexit.Register(winOwn)
		}
		sayReady(role)
		select {}
	}
	// A tree for the job object: main starts worker a and an external
	// child through Start, and an untracked process with exec.Cmd.Start;
	// a starts an untracked process too. Only the job can stop those two.
	scenarios["win-tree"] = func(args []string) {
		winInstall(multiexit.WithGrace(300 * time.Millisecond))
		switch winRole() {
		case "main":
			winS.Register("s")
			winStart(multiexit.Command("a"), scenarioCmd("win-sleep", "ext"))
			if err := scenarioCmd("win-sleep", "main-untracked").Start(); err != nil {
				say("untracked: %v", err)
			}
			if args[0] == "exit" {
				exitOnStdinEOF()
			}
		case "a":
			multiexit.Register(winOwn)
			if err := scenarioCmd("win-sleep", "a-untracked").Start(); err != nil {
				say("untracked: %v", err)
			}
		}
		sayReady(winRole())
		select {}
	}
	// A plain program that runs until it is killed. It blocks in a timer,
	// not in select {}: with no signal handling, the runtime would see a
	// deadlock and exit.
	scenarios["win-sleep"] = func(args []string) {
		sayReady(args[0])
		for {
			time.Sleep(time.Hour)
		}
	}
	// An external child that stops on CTRL_BREAK_EVENT (graceful), or
	// catches and drops it (stubborn).
	scenarios["win-external"] = func(args []string) {
		winInstall(multiexit.WithGrace(500 * time.Millisecond))
		multiexit.Register(hook("H1"))
		winStart(scenarioCmd("win-breakable", args[0]))
		multiexit.Register(hook("H2"))
		exitOnStdinEOF()
		sayReady("main")
		select {}
	}
	scenarios["win-breakable"] = func(args []string) {
		if args[0] == "stubborn" {
			signal.Notify(make(chan os.Signal, 1), os.Interrupt)
		} else {
			winInstall()
			multiexit.Register(hook("E stopped"))
		}
		sayReady("ext")
		select {}
	}
	scenarios["win-env"] = func(args []string) {
		winInstall()
		if winRole() == "main" {
			kids := winStart(multiexit.Command("w"))
			say("worker ended with %v", kids[0].Wait())
			multiexit.Exit(0)
		}
		grandchild := scenarioCmd("win-printenv")
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
	// win-env's worker's child: a plain process.
	scenarios["win-printenv"] = func([]string) {
		v, ok := os.LookupEnv(multiexit.EnvVar)
		if !ok {
			v = "unset"
		}
		say("grandchild sees MULTIEXIT=%s, IsChild %v", v, multiexit.IsChild())
		os.Exit(0)
	}
}

// startFed is start with a pipe on the scenario's standard input; closing
// it asks the scenario's parent to exit (exitOnStdinEOF).
func startFed(t *testing.T, name string, args []string, env ...string) (p *proc, closeStdin func()) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p = startWith(t, func(cmd *exec.Cmd) { cmd.Stdin = r }, name, args, env...)
	r.Close()
	t.Cleanup(func() { w.Close() })
	return p, func() { w.Close() }
}

// readyLines reads lines until one starting with "ready NAME " was seen for
// each name, and returns the PIDs they give.
func (p *proc) readyLines(names ...string) map[string]int {
	p.t.Helper()
	pids := map[string]int{}
	for len(pids) < len(names) {
		if !p.sc.Scan() {
			p.t.Fatalf("output ended; waiting for ready %q, saw %q; stderr:\n%s", names, p.lines, p.stderr.String())
		}
		line := p.sc.Text()
		p.lines = append(p.lines, line)
		for _, n := range names {
			if rest, ok := strings.CutPrefix(line, "ready "+n+" "); ok {
				pid, err := strconv.Atoi(rest)
				if err != nil {
					p.t.Fatalf("bad ready line %q", line)
				}
				pids[n] = pid
			}
		}
	}
	return pids
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

var winCascade = []string{
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
	p, stop := startFed(t, "win-cascade", nil)
	p.readyLines("main", "w1", "w2")
	stop()
	p.check(winCascade, exitCode(0))
	p.quiet()
}

// The parent dies without running anything (TerminateProcess): the worker
// sees EOF on its control channel and runs its hooks, and then the job kills
// what is left: the external child and the untracked processes, main's and
// the worker's.
func TestWindowsJobKillsTreeWhenParentIsKilled(t *testing.T) {
	p, _ := startFed(t, "win-tree", []string{"kill"})
	pids := p.readyLines("main", "a", "ext", "main-untracked", "a-untracked")
	delete(pids, "main")
	hs := holdProcesses(t, pids)
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	requireGone(t, hs)
	trace, how := p.end()
	if how != exitCode(1) {
		t.Errorf("parent ended with %s, want exit 1 (TerminateProcess)", how)
	}
	if diff := cmp.Diff([]string{"a own", "a S(s)"}, trace); diff != "" {
		t.Errorf("the worker's hooks (-want +got):\n%s\nstderr:\n%s", diff, p.stderr.String())
	}
}

// The parent exits: it stops its children in order, and the job kills the
// processes that Start does not track.
func TestWindowsJobKillsTreeWhenParentExits(t *testing.T) {
	p, stop := startFed(t, "win-tree", []string{"exit"})
	pids := p.readyLines("main", "a", "ext", "main-untracked", "a-untracked")
	hs := holdProcesses(t, pids)
	stop()
	requireGone(t, hs)
	p.check([]string{"a own", "a S(s)", "main S(s)"}, exitCode(0))
}

func TestWindowsExternalChild(t *testing.T) {
	t.Run("stubborn: terminated after the grace period", func(t *testing.T) {
		p, stop := startFed(t, "win-external", []string{"stubborn"})
		p.readyLines("main", "ext")
		stop()
		p.check([]string{"H2", "H1"}, exitCode(0))
		if !strings.Contains(p.stderr.String(), "did not stop within its grace period") {
			t.Errorf("the termination is not reported:\n%s", p.stderr.String())
		}
	})
	t.Run("graceful: CTRL_BREAK_EVENT runs its hooks", func(t *testing.T) {
		p, stop := startFed(t, "win-external", []string{"graceful"})
		p.readyLines("main", "ext")
		stop()
		trace, how := p.end()
		if how != exitCode(0) {
			t.Errorf("ended with %s; stderr:\n%s", how, p.stderr.String())
		}
		if s := p.stderr.String(); strings.Contains(s, "cannot send CTRL_BREAK_EVENT") {
			if diff := cmp.Diff([]string{"H2", "H1"}, trace); diff != "" {
				t.Errorf("trace (-want +got):\n%s", diff)
			}
			t.Skipf("console control events are unavailable here (Wine refuses them); the child was terminated after the grace period instead:\n%s", s)
		}
		if diff := cmp.Diff([]string{"H2", "E stopped", "H1"}, trace); diff != "" {
			t.Errorf("trace (-want +got):\n%s\nstderr:\n%s", diff, p.stderr.String())
		}
	})
}

// Ctrl-Break, as Go delivers it (os.Interrupt), runs the hooks and exits
// with 130.
func TestWindowsCtrlBreakRunsHooksLIFO(t *testing.T) {
	p := startWith(t, func(cmd *exec.Cmd) {
		cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: windows.CREATE_NEW_PROCESS_GROUP}
	}, "lifo", nil)
	p.waitFor("ready")
	if err := windows.GenerateConsoleCtrlEvent(windows.CTRL_BREAK_EVENT, uint32(p.cmd.Process.Pid)); err != nil {
		t.Skipf("console control events are unavailable here (Wine refuses them): GenerateConsoleCtrlEvent: %v", err)
	}
	p.check([]string{"C", "B", "A"}, exitCode(130))
	p.quiet()
}

func TestWindowsWorkerEnvironment(t *testing.T) {
	p := start(t, "win-env", nil)
	p.check([]string{
		"grandchild sees MULTIEXIT=unset, IsChild false",
		"worker sees MULTIEXIT set: false",
		"IsChild: true",
		"worker ended with <nil>",
	}, exitCode(0))
	p.quiet()
}

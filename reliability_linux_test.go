package multiexit_test

// Regression tests for defects found by trying the library as a new user
// would: deep trees, shell-outs, slow or broken workers, forged
// environments. Each scenario sits next to the test that runs it.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/multiexit/multiexit"
	"github.com/multiexit/multiexit/internal/proctest"
)

func init() {
	scenario(deepTree, shellOuts, startJobs, chainEntry, lazyWorker, slowWorker, hupWorker, plainMain, deletedBinary, replacedEnv, smallThings, busyChild, escalated, escalatedEntry, brokenStderr, killedWorker)
}

// stubbornLeaf ignores SIGTERM, and so does its background child, and
// starts an escapee (setsid) that ignores it too.
const stubbornLeaf = `trap '' TERM; setsid sh -c "trap '' TERM; echo ready escapee; exec sleep 1000" & sleep 1000 & echo ready leaf; wait`

// deepTree: main → L1 → … → Ldepth, each a worker with its own hook and
// the inherited shared hook S; the deepest starts a stubborn leaf. The
// arguments: the depth, how the top ends (see deepTreeCase), and the
// WithTimeout of the top and of the workers ("-": the default, 20 s;
// "30s,15s": WithTimeout(30s) and WithGrace(15s)). The grace periods of
// every level must fit in one budget.
func deepTree(args []string) {
	level := 0
	if multiexit.IsChild() {
		level, _ = strconv.Atoi(strings.TrimPrefix(role(), "L"))
		args = args[1:]
	}
	depth, _ := strconv.Atoi(args[0])
	how := args[1]
	timeout := args[2]
	if level > 0 {
		timeout = args[3]
	}
	// Info: on a failure, the log tells each level's deadline and hooks.
	opts := []multiexit.Option{multiexit.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil)))}
	if timeout != "-" {
		timeout, grace, _ := strings.Cut(timeout, ",")
		d, err := time.ParseDuration(timeout)
		if err != nil {
			panic(err)
		}
		opts = append(opts, multiexit.WithTimeout(d))
		if grace != "" {
			g, err := time.ParseDuration(grace)
			if err != nil {
				panic(err)
			}
			opts = append(opts, multiexit.WithGrace(g))
		}
	}
	mustInstall(opts...)
	name := role()
	if level == 0 {
		sharedS.Register("s")
	}
	multiexit.Register(func(context.Context) error {
		say("%s own", name)
		return nil
	})
	if level < depth {
		mustStart(multiexit.Command(append([]string{fmt.Sprintf("L%d", level+1)}, args...)...))
	} else {
		leaf := exec.Command("sh", "-c", stubbornLeaf)
		leaf.Stdout = os.Stdout
		mustStart(leaf)
	}
	say("ready %s", name)
	if level == 0 {
		switch how {
		case "exit", "panic", "os.Exit":
			// Wait for the whole tree to be up: the test says so on stdin.
			io.ReadAll(os.Stdin)
		}
		switch how {
		case "exit":
			multiexit.Exit(0)
		case "panic":
			go panic("the top panics")
		case "os.Exit":
			os.Exit(0)
		}
	}
	select {}
}

// Every level's hooks run, leaves first, whether the top is stopped by
// SIGTERM, by Exit or dies by SIGKILL, with a leaf that ignores SIGTERM
// and an escapee at the bottom, with the default grace (5 s) and deadline
// (20 s) at every level.
func TestDeepTreeRunsEveryLevelsHooks(t *testing.T) {
	for _, depth := range []int{1, 2, 3} {
		for _, how := range []string{"term", "exit", "kill"} {
			t.Run(fmt.Sprintf("depth %d, %s", depth, how), func(t *testing.T) { deepTreeCase(t, depth, how, "-", "-") })
		}
	}
}

// One budget, whatever the order in which the stop reaches the levels: a
// top with WithTimeout(2s) and workers that would take longer (the default
// 20 s, or 30 s with a grace of 15 s for their own children), a leaf that
// ignores SIGTERM at the bottom. The top is
// stopped by SIGTERM or Exit; or it dies (SIGKILL, a goroutine's panic,
// os.Exit), and each worker must take its parent's deadline in whichever
// order the kernel's word of it comes (the control channel's end,
// Pdeathsig, the O_ASYNC signal), so that it is done before the top's
// guardian kills the tree (one level deep, a worker that kept its own 20 s
// would give the leaf 5 s; three levels deep, workers at 30 s would give
// it 3.4 s); or every process of the tree gets SIGTERM at
// once (systemd's KillMode=control-group), so that each worker began on
// its own, with its own deadline, before its parent's shorter stop came.
// Every level's hooks run, leaves first. Three levels deep when the top
// dies (the first worker then has the whole 2 s); two when the top stops
// them, which keeps half of its 2 s for its own hooks: the third level
// would have about 160 ms for its stubborn leaf, its sweep and its hooks,
// a margin a loaded machine does not always give.
func TestDeepTreeOneBudgetInEveryOrder(t *testing.T) {
	all := []string{"term", "exit", "kill", "panic", "os.Exit", "unit"}
	for _, tc := range []struct {
		depth   int
		workers string
		hows    []string
	}{
		{1, "-", all},
		{2, "-", []string{"term", "exit", "unit"}},
		{2, "30s,15s", []string{"term", "exit", "unit"}},
		{3, "-", []string{"kill", "panic", "os.Exit"}},
		{3, "30s,15s", []string{"kill", "panic", "os.Exit"}},
	} {
		for _, how := range tc.hows {
			t.Run(fmt.Sprintf("depth %d, workers %s, %s", tc.depth, tc.workers, how), func(t *testing.T) {
				deepTreeCase(t, tc.depth, how, "2s", tc.workers)
			})
		}
	}
}

// deepTreeCase runs deepTree at depth with the given timeouts, ends its top
// as how says (term: SIGTERM; exit: Exit(0); kill: SIGKILL; panic: a
// goroutine's panic; os.Exit: os.Exit(0); unit: SIGTERM to every process
// of the tree at once), and checks that every level ran its hooks, leaves
// first.
func deepTreeCase(t *testing.T, depth int, how, top, workers string) {
	var stdin io.WriteCloser
	p := startWith(t, func(cmd *exec.Cmd) {
		var err error
		if stdin, err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
	}, deepTree, []string{strconv.Itoa(depth), how, top, workers})
	want := []string{"ready main", "ready leaf", "ready escapee"}
	var order []string
	for l := depth; l >= 1; l-- {
		want = append(want, fmt.Sprintf("ready L%d", l))
		order = append(order, fmt.Sprintf("L%d own", l), fmt.Sprintf("L%d S(s)", l))
	}
	p.WaitAll(want...)
	topHooks := []string{"main own", "main S(s)"}
	var wantHow string
	switch how {
	case "term":
		p.Signal(syscall.SIGTERM)
		order, wantHow = append(order, topHooks...), diedOf(syscall.SIGTERM)
	case "exit":
		stdin.Close()
		order, wantHow = append(order, topHooks...), exitCode(0)
	case "kill":
		p.Signal(syscall.SIGKILL)
		wantHow = diedOf(syscall.SIGKILL)
	case "panic":
		stdin.Close()
		wantHow = exitCode(2)
	case "os.Exit":
		stdin.Close()
		wantHow = exitCode(0)
	case "unit":
		everyProcess(t, p, syscall.SIGTERM)
		order, wantHow = append(order, topHooks...), diedOf(syscall.SIGTERM)
	}
	trace, ended := p.end()
	var hooks []string
	for _, l := range trace {
		if strings.HasSuffix(l, " own") || strings.HasSuffix(l, " S(s)") {
			hooks = append(hooks, l)
		}
	}
	if diff := cmp.Diff(order, hooks); diff != "" || ended != wantHow {
		t.Errorf("ended with %s (want %s); hooks (-want +got):\n%s\nstderr:\n%s", ended, wantHow, diff, p.Stderr.String())
	}
}

// everyProcess sends sig to every process of p's tree (those that carry
// its tag), one right after another, as systemd's KillMode=control-group
// does to a unit's cgroup.
func everyProcess(t *testing.T, p *proc, sig syscall.Signal) {
	t.Helper()
	for _, s := range proctest.Survivors(p.Tag) {
		if err := syscall.Kill(s.PID, sig); err != nil && err != syscall.ESRCH {
			t.Fatal(err)
		}
	}
}

// shellOuts runs n commands the way a daemon shells out, each leaving a
// short-lived background process behind (a plain one and a double-forked
// one), with a child whose status is waited for late, and reports the
// zombies left.
func shellOuts(args []string) {
	n, _ := strconv.Atoi(args[0])
	multiexit.Run(func(ctx context.Context) error {
		late := exec.Command("sh", "-c", "exit 7")
		if err := late.Start(); err != nil {
			return err
		}
		proctest.WaitExited(late.Process.Pid) // a zombie: its status is Wait's
		for i := range n {
			script := "true &"
			if i%2 == 1 {
				script = "(true &)"
			}
			if err := exec.Command("sh", "-c", script).Run(); err != nil {
				return err
			}
		}
		say("late Wait: %v", late.Wait())
		say("layer %v; zombies left: %d", multiexit.Containment(), zombiesLeft())
		return nil
	})
}

func state(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
}

// zombiesLeft counts this process's zombie children once its background
// processes have ended and the reaper has had the time to see them: it
// waits (up to 10 s) until every child but the guardian (this binary,
// re-executed) is gone, not merely a zombie. Waiting only for no zombie
// at one look let a background process that was still running then die
// just before the count: a zombie the reaper had not reached yet.
func zombiesLeft() int {
	self, _ := os.Readlink("/proc/self/exe")
	look := func() (zombies, others int) {
		tasks, _ := filepath.Glob("/proc/self/task/*/children")
		for _, f := range tasks {
			b, _ := os.ReadFile(f)
			for _, pid := range strings.Fields(string(b)) {
				p, _ := strconv.Atoi(pid)
				switch st := state(p); {
				case st == "Z":
					zombies++
				case st == "":
				default:
					if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", p)); exe != self {
						others++
					}
				}
			}
		}
		return zombies, others
	}
	end := time.Now().Add(10 * time.Second)
	for {
		zombies, others := look()
		if zombies+others == 0 || time.Now().After(end) {
			return zombies
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A daemon that shells out a thousand times, each command leaving a
// background process, holds no zombie afterwards on any layer, and a child
// waited for seconds after it exited still gets its own status.
func TestShellOutsLeaveNoZombies(t *testing.T) {
	for _, layer := range layers(t) {
		t.Run(layer, func(t *testing.T) {
			p := start(t, shellOuts, []string{"1000"}, multiexit.ContainmentVar+"="+layer)
			p.check([]string{"late Wait: exit status 7", "layer " + layer + "; zombies left: 0"}, exitCode(0))
			p.Quiet()
		})
	}
}

// startJobs starts n entries of one short job each, leaving a background
// process behind, waits for each, and reports what is left once those
// background processes are gone: stack entries, cgroups, zombies.
func startJobs(args []string) {
	n, _ := strconv.Atoi(args[0])
	mustInstall(multiexit.WithGrace(time.Second))
	before := multiexit.StackLen()
	mustStart(exec.Command("true"))[0].Wait() // the first Start starts the guardian for good
	fds := countFDs()
	for i := range n {
		script := args[1]
		if i%2 == 1 {
			script = "(" + args[1] + ")"
		}
		kids := mustStart(exec.Command("sh", "-c", script))
		kids[0].Wait()
	}
	// Released as their background processes end.
	end := time.Now().Add(10 * time.Second)
	for multiexit.StackLen() > before && time.Now().Before(end) {
		time.Sleep(10 * time.Millisecond)
	}
	left, _ := filepath.Glob(fmt.Sprintf("/sys/fs/cgroup/unified/multiexit.*.%d.*/e*", os.Getpid()))
	left2, _ := filepath.Glob(fmt.Sprintf("/sys/fs/cgroup/multiexit.*.%d.*/e*", os.Getpid()))
	say("entries left: %d; cgroups left: %d; zombies left: %d; descriptors: %d more",
		multiexit.StackLen()-before, len(left)+len(left2), zombiesLeft(), countFDs()-fds)
	multiexit.Exit(0)
}

// Start entries whose child exits at once, leaving a background process,
// are released (entry and cgroup) once that process is gone too, and none
// of those processes is left a zombie — also one that dies before the
// reaper could see it alive.
func TestFinishedEntriesAreReleased(t *testing.T) {
	for _, layer := range layers(t) {
		if layer == "process-group" {
			continue // it releases an entry when its children are gone: the rest is out of its reach
		}
		for _, job := range []string{"sleep 0.1 &", "/bin/true &"} {
			t.Run(layer+", "+job, func(t *testing.T) {
				p := start(t, startJobs, []string{"50", job}, multiexit.ContainmentVar+"="+layer)
				p.check([]string{"entries left: 0; cgroups left: 0; zombies left: 0; descriptors: 0 more"}, exitCode(0))
				p.Quiet()
			})
		}
	}
}

// chain starts a chain of n processes, each in a session of its own and
// ignoring SIGTERM, each the parent of the next.
func chain(n int) string {
	script := `echo ready chain; exec sleep 1000`
	for range n {
		script = `trap '' TERM; setsid sh -c '` + strings.ReplaceAll(script, `'`, `'\''`) + `' & wait`
	}
	return script
}

// chainEntry: hooks H1 and H2 around an external child running chain(5).
func chainEntry(args []string) {
	hooksAround(300*time.Millisecond, chain(5))
}

// On the subreaper layer, as on the cgroup layer, a chain of escapees that
// ignore SIGTERM is killed at the end of one grace period: no generation of
// orphans gets a grace period of its own.
func TestOneGracePeriodPerEntry(t *testing.T) {
	for _, layer := range layers(t) {
		if layer == "process-group" {
			continue // escapees are out of its reach (see TestEscapeesAreContained)
		}
		t.Run(layer, func(t *testing.T) {
			p := start(t, chainEntry, nil, multiexit.ContainmentVar+"="+layer)
			p.signalWhenReady(syscall.SIGTERM, "ready main", "ready chain")
			p.check([]string{"H2", "H1"}, diedOf(syscall.SIGTERM))
			errLog := p.Stderr.String()
			if n := strings.Count(errLog, "did not stop within"); n > 2 {
				t.Errorf("%d grace periods ran out, want at most 2 (the child's, and one for what it left):\n%s", n, errLog)
			}
		})
	}
}

// lazyWorker: the worker starts a process of its own, then never calls
// Install; the parent's Start must give up after AckTimeout (shortened
// here), kill it with what it started, and say which worker.
func lazyWorker(args []string) {
	if multiexit.IsChild() {
		exec.Command("sleep", "1000").Start() // in its process group
		say("ready lazy %d", os.Getpid())
		select {}
	}
	multiexit.SetAckTimeout(2 * time.Second)
	mustInstall()
	multiexit.Register(hook("H1"))
	_, err := multiexit.Start(multiexit.Command("lazy"), exec.Command("sleep", "1000"))
	say("start error: %v", err)
	multiexit.Exit(0)
}

// Start returns within AckTimeout when a worker never calls Install: an
// error naming the worker, and nothing of what it started is left.
func TestStartGivesUpOnAWorkerThatNeverInstalls(t *testing.T) {
	p := start(t, lazyWorker, nil)
	trace, how := p.end()
	// The worker says it is there, unless (a loaded machine) it was
	// killed before it could.
	want := "start error: multiexit: Start: worker pid "
	if len(trace) == 3 && strings.HasPrefix(trace[0], "ready lazy ") {
		want = fmt.Sprintf("%s%d (", want, proctest.LastPID(trace[0]))
		trace = trace[1:]
	}
	if how != exitCode(0) || len(trace) != 2 || !strings.HasPrefix(trace[0], want) ||
		!strings.Contains(trace[0], " lazy) did not acknowledge Install within 2s") || trace[1] != "H1" {
		t.Errorf("ended with %s, trace %q; want a line starting %q; stderr:\n%s", how, trace, want, p.Stderr.String())
	}
	// proctest's cleanup proves that nothing is left.
}

// slowWorker: the worker waits at the test's barrier before Install.
func slowWorker(args []string) {
	if multiexit.IsChild() {
		multiexit.Register(own)
		say("booting %s", role())
		barrierWait(role())
		mustInstall()
		select {}
	}
	mustInstall(multiexit.WithGrace(200 * time.Millisecond))
	multiexit.Register(hook("H1"))
	multiexit.Run(func(ctx context.Context) error {
		_, err := multiexit.Start(multiexit.Command("slow"))
		say("start error: %v", err)
		return err
	})
}

// A SIGTERM while Start waits for a worker that is slow to call Install:
// Start returns at once, the worker's stop is bounded by its grace period,
// and the log tells one story: nothing abandoned, no main left behind.
func TestSignalDuringStart(t *testing.T) {
	b, env := newBarrier(t)
	p := start(t, slowWorker, nil, env)
	p.WaitFor("booting slow")
	b.wait(1) // the worker is held before Install
	p.Signal(syscall.SIGTERM)
	trace, how := p.end()
	if diff := cmp.Diff([]string{"booting slow", "start error: multiexit: Start: the shutdown has begun", "H1"}, trace); diff != "" || how != diedOf(syscall.SIGTERM) {
		t.Errorf("ended with %s; trace (-want +got):\n%s\nstderr:\n%s", how, diff, p.Stderr.String())
	}
	for _, bad := range []string{"abandoned", "did not return", "has not returned"} {
		if strings.Contains(p.Stderr.String(), bad) {
			t.Errorf("the log says %q:\n%s", bad, p.Stderr.String())
		}
	}
}

// hupWorker: a worker that asks for SIGHUP only.
func hupWorker(args []string) {
	if multiexit.IsChild() {
		mustInstall(multiexit.WithSignals(syscall.SIGHUP))
		multiexit.Register(own)
		say("ready w")
		select {}
	}
	parentOfOneWorker()
}

// A worker runs its hooks on its parent's stop and on its parent's death
// whatever signals it configured.
func TestWorkerWithOtherSignalsStillStops(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			p := start(t, hupWorker, nil)
			p.signalWhenReady(sig, "ready main", "ready w")
			trace, _ := p.end()
			if len(trace) == 0 || trace[0] != "w own" {
				t.Errorf("the worker's hook did not run: %q\nstderr:\n%s", trace, p.Stderr.String())
			}
		})
	}
}

// plainMain is any program that imports multiexit.
func plainMain(args []string) {
	say("main ran")
	os.Exit(0)
}

// MULTIEXIT_GUARDIAN alone does not make a program a guardian: garbage, an
// empty line on descriptor 3, a pipe held open, another tree's cgroup —
// main runs, a warning says why, and another live tree comes through
// untouched.
func TestGuardianCannotBeForged(t *testing.T) {
	if !cgroupWritable() {
		t.Skip("needs a writable cgroup v2 (the guardian's layer)")
	}
	// A live tree, with its guardian: the forger's target.
	victim := start(t, escape, nil)
	victim.WaitAll(escapeReady...)
	root := ""
	for _, mnt := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		m, _ := filepath.Glob(fmt.Sprintf("%s/*/multiexit.*.%d.*", mnt, victim.Cmd.Process.Pid))
		m2, _ := filepath.Glob(fmt.Sprintf("%s/multiexit.*.%d.*", mnt, victim.Cmd.Process.Pid))
		if m = append(m, m2...); len(m) > 0 {
			root = m[0]
		}
	}
	if root == "" {
		t.Fatal("the victim's tree cgroup was not found")
	}
	vpid := strconv.Itoa(victim.Cmd.Process.Pid)
	vstart := ""
	if b, err := os.ReadFile("/proc/" + vpid + "/stat"); err == nil {
		s := string(b)
		vstart = strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[19]
	}
	for _, tc := range []struct{ name, value, fd3 string }{
		{"garbage", "%%", ""},
		{"an empty line on descriptor 3", root + ";1000000000;" + vpid + ";" + vstart, "\n"},
		{"a pipe held open", root + ";1000000000;" + vpid + ";" + vstart, "hold"},
		{"the victim's cgroup as its own parent's", root + ";1;" + strconv.Itoa(os.Getpid()) + ";0", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startWith(t, func(cmd *exec.Cmd) {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { r.Close(); w.Close() })
				cmd.ExtraFiles = []*os.File{r}
				if tc.fd3 != "hold" {
					w.WriteString(tc.fd3)
					w.Close()
				}
			}, plainMain, nil, "MULTIEXIT_GUARDIAN="+tc.value)
			p.check([]string{"main ran"}, exitCode(0))
			if !strings.Contains(p.Stderr.String(), "was not started as a guardian") {
				t.Errorf("no warning:\n%s", p.Stderr.String())
			}
		})
	}
	// The victim's tree is whole: its escapee still runs, and its stop is
	// the ordinary one.
	if _, err := os.Stat(root); err != nil {
		t.Errorf("the victim's cgroup is gone: %v", err)
	}
	victim.Signal(syscall.SIGTERM)
	victim.check([]string{"H1"}, diedOf(syscall.SIGTERM))
}

// deletedBinary: the program's file is deleted (a deploy replaced it), then
// it starts a worker and an external command.
func deletedBinary(args []string) {
	mustInstall()
	if multiexit.IsChild() {
		multiexit.Register(own)
		say("ready w")
		select {}
	}
	if err := os.Remove(args[0]); err != nil {
		say("remove: %v", err)
	}
	multiexit.Register(hook("H1"))
	ext := exec.Command("sh", "-c", "echo ready ext; exec sleep 1000")
	ext.Stdout = os.Stdout
	mustStart(multiexit.Command("w"), ext)
	say("ready main")
	select {}
}

// Start keeps working after the running binary's file was deleted:
// workers and the guardian come from the file the process runs.
func TestStartAfterTheBinaryIsDeleted(t *testing.T) {
	dir := t.TempDir()
	copyPath := filepath.Join(dir, "multiexit.test")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copyPath, self, 0o755); err != nil {
		t.Fatal(err)
	}
	p := startWith(t, func(cmd *exec.Cmd) {
		cmd.Path = copyPath
		cmd.Args[0] = copyPath
	}, deletedBinary, []string{copyPath})
	p.WaitAll("ready main", "ready w", "ready ext")
	if _, err := os.Stat(copyPath); err == nil {
		t.Fatal("the binary was not deleted")
	}
	p.Signal(syscall.SIGTERM)
	p.check([]string{"w own", "H1"}, diedOf(syscall.SIGTERM))
	p.Quiet()
}

// replacedEnv: a Command whose Env the caller replaced. If it were not a
// worker it would run main's branch again; the depth bounds that.
func replacedEnv(args []string) {
	mustInstall()
	if multiexit.IsChild() {
		say("worker IsChild: true")
		multiexit.Register(own)
		say("ready w")
		select {}
	}
	if os.Getenv("MX_DEPTH") != "" {
		say("recursion: a worker ran main's branch")
		multiexit.Exit(1)
	}
	cmd := multiexit.Command("w")
	cmd.Env = append(os.Environ(), "MX_DEPTH=1")
	mustStart(cmd)
	say("ready main")
	select {}
}

// A Command stays a worker whatever the caller does to its Env.
func TestReplacedEnvStillStartsAWorker(t *testing.T) {
	p := start(t, replacedEnv, nil)
	p.signalWhenReady(syscall.SIGTERM, "ready main", "ready w")
	p.check([]string{"worker IsChild: true", "w own"}, diedOf(syscall.SIGTERM))
}

// smallThings: Exit's range, options that cannot take their value,
// runtime.Goexit in Run's main.
func smallThings(args []string) {
	switch args[0] {
	case "exit256":
		multiexit.Register(hook("A"))
		multiexit.Exit(256)
	case "timeout0":
		say("install: %v", multiexit.Install(multiexit.WithTimeout(0), multiexit.WithGrace(-time.Second)))
		os.Exit(0)
	case "drain":
		say("install: %v", multiexit.Install(multiexit.WithTimeout(time.Second), multiexit.WithDrain(2*time.Second)))
		os.Exit(0)
	case "goexit":
		multiexit.Register(hook("A"))
		multiexit.Run(func(ctx context.Context) error {
			runtime.Goexit()
			return nil
		})
	}
}

func TestSmallThings(t *testing.T) {
	t.Run("Exit(256) exits 255, logged", func(t *testing.T) {
		p := start(t, smallThings, []string{"exit256"})
		p.check([]string{"A"}, exitCode(255))
		if !strings.Contains(p.Stderr.String(), "exit codes are 0 to 255") {
			t.Errorf("not logged:\n%s", p.Stderr.String())
		}
	})
	t.Run("WithTimeout(0) and a negative grace are refused", func(t *testing.T) {
		p := start(t, smallThings, []string{"timeout0"})
		trace, _ := p.end()
		all := strings.Join(trace, "\n")
		if !strings.HasPrefix(all, "install: ") || !strings.Contains(all, "WithTimeout(0s): the shutdown deadline must be positive") || !strings.Contains(all, "WithGrace(-1s)") {
			t.Errorf("%q", trace)
		}
	})
	t.Run("a drain longer than the deadline is refused", func(t *testing.T) {
		p := start(t, smallThings, []string{"drain"})
		trace, _ := p.end()
		if len(trace) != 1 || !strings.Contains(trace[0], "WithDrain(2s) must be shorter than the shutdown deadline") {
			t.Errorf("%q", trace)
		}
	})
	t.Run("runtime.Goexit in main is logged", func(t *testing.T) {
		p := start(t, smallThings, []string{"goexit"})
		p.check([]string{"A"}, exitCode(0))
		if !strings.Contains(p.Stderr.String(), "runtime.Goexit") {
			t.Errorf("not logged:\n%s", p.Stderr.String())
		}
	})
}

// busyChild: one child that ignores SIGTERM (it uses its whole grace
// period) and left an escapee that stops on SIGTERM, and says so. The
// escapee waits for its sleeps with the wait builtin, which a trapped
// signal interrupts: a shell waiting for a foreground command runs its
// trap only once the command ends, and a SIGTERM that reaches the sleep
// between its fork and its exec is lost (the copy of the shell takes it),
// so the trap could come a whole second late, after the grace period.
func busyChild(args []string) {
	mustInstall(multiexit.WithGrace(time.Second))
	multiexit.Register(hook("H1"))
	cmd := exec.Command("sh", "-c", `setsid sh -c 'trap "echo escapee got TERM; exit 0" TERM; echo ready escapee; while :; do sleep 1 & wait $!; done' & trap '' TERM; echo ready child; while :; do sleep 1; done`)
	cmd.Stdout = os.Stdout
	mustStart(cmd)
	say("ready main")
	select {}
}

// An escapee gets SIGTERM with its entry's children, not only once they
// are gone: it has the one grace period too, even when a child uses all of
// it.
func TestEscapeesShareTheGracePeriod(t *testing.T) {
	for _, layer := range layers(t) {
		if layer == "process-group" {
			continue
		}
		t.Run(layer, func(t *testing.T) {
			p := start(t, busyChild, nil, multiexit.ContainmentVar+"="+layer)
			p.signalWhenReady(syscall.SIGTERM, "ready main", "ready child", "ready escapee")
			p.check([]string{"escapee got TERM", "H1"}, diedOf(syscall.SIGTERM))
		})
	}
}

// escalated: a worker whose first hook waits at the test's barrier, and a
// hook after it.
func escalated(args []string) {
	if multiexit.IsChild() {
		barrierWorker(hook("w after"))
	}
	parentOfOneWorker()
}

// barrierWorker is a worker's side of a scenario: the hooks below, then
// one that waits at the test's barrier; it says "ready w" and never
// returns.
func barrierWorker(below ...func(context.Context) error) {
	for _, h := range below {
		multiexit.Register(h)
	}
	multiexit.Register(func(context.Context) error {
		barrierWait("w")
		return nil
	})
	mustInstall()
	say("ready w")
	select {}
}

// A second signal brings the parent's deadline forward; its workers still
// get the short late window to finish their hooks, not SIGKILL at once.
func TestSecondSignalGivesWorkersTheLateWindow(t *testing.T) {
	p, b := escalateWhileWorkerWaits(t, escalated)
	b.release()
	trace, how := p.end()
	if how != diedOf(syscall.SIGTERM) || !slices.Contains(trace, "w after") {
		t.Errorf("ended with %s; trace %q; stderr:\n%s", how, trace, p.Stderr.String())
	}
}

// escalateWhileWorkerWaits starts scenario f, a parent and one worker "w"
// (barrierWorker), sends the parent SIGTERM, and once the worker waits at
// the barrier, SIGINT: the second signal.
func escalateWhileWorkerWaits(t *testing.T, f func([]string)) (*proc, *barrier) {
	t.Helper()
	b, env := newBarrier(t)
	p := start(t, f, nil, env)
	p.signalWhenReady(syscall.SIGTERM, "ready main", "ready w")
	b.wait(1)
	p.Signal(syscall.SIGINT)
	return p, b
}

// escalatedEntry: a parent whose hook "bottom", registered before Start,
// says whether the worker still exists when it runs; the worker's hook
// waits at the test's barrier, which is never released.
func escalatedEntry(args []string) {
	if multiexit.IsChild() {
		barrierWorker()
	}
	mustInstall()
	var pid int
	multiexit.Register(func(context.Context) error {
		_, err := os.Stat("/proc/" + strconv.Itoa(pid))
		say("bottom: worker exists: %v", err == nil)
		return nil
	})
	pid = mustStart(multiexit.Command("w"))[0].PID()
	say("ready main")
	select {}
}

// A second signal while a Start entry stops its children does not let the
// hooks below the entry run while they live: the entry is waited for
// through the children's late window and their SIGKILL, not abandoned
// after abandonSlack.
func TestSecondSignalKeepsTheEntryInItsPlace(t *testing.T) {
	p, _ := escalateWhileWorkerWaits(t, escalatedEntry) // the barrier stays closed
	p.check([]string{"bottom: worker exists: false"}, diedOf(syscall.SIGTERM))
}

// parentOfOneWorker is the parent's side of a scenario: its hook H1, then
// one worker "w", until a signal.
func parentOfOneWorker() {
	mustInstall()
	multiexit.Register(hook("H1"))
	mustStart(multiexit.Command("w"))
	say("ready main")
	select {}
}

// brokenStderr: standard error is a pipe nobody reads (a closed terminal,
// prog 2>&1 | head -1), and Install logs a warning (the test sets an
// unknown containment layer). The process must survive it, and run its
// hooks on SIGTERM.
func brokenStderr(args []string) {
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil {
		panic(err)
	}
	syscall.Close(p[0])
	if err := syscall.Dup2(p[1], 2); err != nil {
		panic(err)
	}
	mustInstall()
	multiexit.Register(hook("H1"))
	say("ready: survived the warning")
	select {}
}

// multiexit's own log lines never kill the process by SIGPIPE: Go ends a
// process whose write to descriptor 2 finds a broken pipe.
func TestBrokenStderrDoesNotKill(t *testing.T) {
	p := start(t, brokenStderr, nil, multiexit.ContainmentVar+"=bogus")
	p.signalWhenReady(syscall.SIGTERM, "ready")
	p.check([]string{"H1"}, diedOf(syscall.SIGTERM))
}

// killedWorker: main, with hook H1 and a grace period of 1 s, starts the
// worker w1, which starts an external child that leaves an escapee
// (setsid) behind and becomes a sleep; given "ignores", the escapee
// ignores SIGTERM. Each says its PID.
func killedWorker(args []string) {
	mustInstall(multiexit.WithGrace(time.Second))
	if role() == "main" {
		multiexit.Register(hook("H1"))
		mustStart(multiexit.Command("w1", args[0]))
		sayReady("main")
		select {}
	}
	trap := ""
	if args[1] == "ignores" {
		trap = `trap "" TERM; `
	}
	ext := exec.Command("sh", "-c", `setsid sh -c '`+trap+`echo ready esc $$; exec sleep 1000 >/dev/null 2>&1 </dev/null' & exec sleep 1000 >/dev/null`)
	ext.Stdout = os.Stdout
	mustStart(ext)
	sayReady(role())
	select {}
}

// The escapee of a SIGKILLed worker reparents to the top, tagged with the
// worker's own tree, and is stopped with the top's entry that started the
// worker (SIGTERM, then SIGKILL at the end of its grace period): it does
// not outlive the top.
func TestEscapeeOfAKilledWorkerStopsWithItsEntry(t *testing.T) {
	for _, layer := range layers(t) {
		if layer == "process-group" {
			continue // escapees are out of its reach (see TestEscapeesAreContained)
		}
		for _, kind := range []string{"stops", "ignores"} {
			t.Run(layer+", escapee "+kind+" SIGTERM", func(t *testing.T) {
				p := start(t, killedWorker, []string{kind}, multiexit.ContainmentVar+"="+layer)
				fds := p.Watch("ready main", "ready w1", "ready esc")
				if err := unix.PidfdSendSignal(fds["ready w1"], unix.SIGKILL, nil, 0); err != nil {
					t.Fatal(err)
				}
				proctest.Exited(fds["ready w1"], -1) // its escapee has reparented (or will with its parent)
				p.Signal(syscall.SIGTERM)
				p.check([]string{"H1"}, diedOf(syscall.SIGTERM))
				p.Gone()
				// proctest's cleanup proves that nothing else is left.
			})
		}
	}
}

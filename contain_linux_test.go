package multiexit_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiexit/multiexit"
	"github.com/multiexit/multiexit/internal/proctest"
)

func init() { scenario(escape, stoppedWorker, crash, pid1, installOnly, hookOnCue, bystander) }

// escapeScript starts, in the child's own process group, one descendant
// that leaves the group (setsid) and one that double-forks (orphaned, same
// group), then prints a line and becomes a sleep.
const escapeScript = `setsid sh -c 'echo "ready esc"; exec sleep 1000 >/dev/null 2>&1 </dev/null' & (sleep 1000 >/dev/null 2>&1 </dev/null &) ; echo "ready ext $$"; exec sleep 1000 >/dev/null`

// escapeReady are the lines a tree with an external child running
// escapeScript says once it is up.
var escapeReady = []string{"ready main", "ready ext", "ready esc"}

type contextT = context.Context

func layers(t *testing.T) []string {
	out := []string{"subreaper", "process-group"}
	if cgroupWritable() {
		out = append([]string{"cgroup"}, out...)
	} else {
		t.Log("no writable cgroup v2 here: the cgroup layer is not tested")
	}
	return out
}

func cgroupWritable() bool {
	for _, p := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st syscall.Statfs_t
		if syscall.Statfs(p, &st) == nil && st.Type == 0x63677270 && syscall.Access(p, 2) == nil {
			return true
		}
	}
	return false
}

// outsider starts a process of the same user outside any tree and checks,
// when the test ends, that it is still alive.
func outsider(t *testing.T) {
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			t.Errorf("a process outside the tree was signalled: %v", err)
		}
		cmd.Process.Kill()
		cmd.Wait()
	})
}

// escape: main, with hook H1, starts args[0] (default 1) external children
// running escapeScript and, given a second argument, as many workers, which
// start one each and have their own hook. Each says its containment layer.
func escape(args []string) {
	mustInstall(multiexit.WithGrace(time.Second))
	multiexit.Register(hook("H1"))
	n := 1
	if len(args) > 0 {
		n, _ = strconv.Atoi(args[0])
	}
	if role() == "main" {
		var cmds []*exec.Cmd
		for range n {
			ext := exec.Command("sh", "-c", escapeScript)
			ext.Stdout = os.Stdout
			cmds = append(cmds, ext)
		}
		if len(args) > 1 { // workers too, each with an escaping grandchild
			for i := range n {
				cmds = append(cmds, multiexit.Command(fmt.Sprintf("w%d", i)))
			}
		}
		mustStart(cmds...)
	} else {
		ext := exec.Command("sh", "-c", escapeScript)
		ext.Stdout = os.Stdout
		mustStart(ext)
		multiexit.Register(own)
	}
	say("ready %s layer %v", role(), multiexit.Containment())
	select {}
}

// Descendants that leave their process group (setsid) or double-fork are
// stopped with their entry on the cgroup and subreaper layers. With process
// groups alone the setsid one escapes: the test shows that limit.
func TestEscapeesAreContained(t *testing.T) {
	for _, layer := range layers(t) {
		t.Run(layer, func(t *testing.T) {
			outsider(t)
			p := start(t, escape, nil, multiexit.ContainmentVar+"="+layer)
			tag := p.Tag
			ready := p.WaitAll(escapeReady...)
			if want := "layer " + layer; !strings.HasSuffix(ready["ready main"], want) {
				t.Fatalf("%q, want %q", ready["ready main"], want)
			}
			p.Signal(syscall.SIGTERM)
			trace, how := p.end()
			if how != diedOf(syscall.SIGTERM) || !slices.Equal(trace, []string{"H1"}) {
				t.Errorf("ended with %s, trace %q; stderr:\n%s", how, trace, p.Stderr.String())
			}
			left := proctest.Survivors(tag)
			if layer == "process-group" {
				if len(left) == 0 {
					t.Errorf("with process groups alone the setsid descendant should escape")
				}
				// Clean up what this layer cannot, until nothing is left.
				for ; len(left) > 0; left = proctest.Survivors(tag) {
					for _, s := range left {
						syscall.Kill(s.PID, syscall.SIGKILL)
					}
				}
				return
			}
			if len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

// After SIGKILL of the parent, the guardian kills what the workers' own
// shutdown cannot reach: descendants that left their process groups.
func TestSIGKILLedParentLeavesNothing(t *testing.T) {
	if !cgroupWritable() {
		t.Skip("needs a writable cgroup v2: without it escapees of a SIGKILLed parent survive (documented)")
	}
	for _, n := range []int{1, 50} {
		t.Run(fmt.Sprintf("%d externals and %d workers", n, n), func(t *testing.T) {
			outsider(t)
			p := start(t, escape, []string{strconv.Itoa(n), "workers"})
			want := []string{"ready main"}
			for i := range n {
				want = append(want, fmt.Sprintf("ready w%d", i))
			}
			p.signalWhenReady(syscall.SIGKILL, want...)
			trace, _ := p.end() // EOF: every holder of the pipe, the guardian too, is gone
			for i := range n {
				w := fmt.Sprintf("w%d", i)
				if !slices.Contains(trace, w+" own") {
					t.Errorf("worker %s did not run its hook", w)
				}
			}
			// proctest's cleanup proves that nothing is left.
		})
	}
}

// hookOnCue: main starts a worker w whose hook says "w hook begins", waits
// for a line on the FIFO args[0], and says "w hook done".
func hookOnCue(args []string) {
	mustInstall()
	if role() == "main" {
		mustStart(multiexit.Command("w", args[0]))
	} else {
		fifo := os.Args[2]
		multiexit.Register(func(contextT) error {
			f, err := os.Open(fifo)
			if err != nil {
				return err
			}
			defer f.Close()
			say("w hook begins")
			bufio.NewReader(f).ReadString('\n')
			say("w hook done")
			return nil
		})
	}
	say("ready %s", role())
	select {}
}

// bystander is another program of the same PID namespace: its Start
// makes its own tree cgroup, after cleaning up stale ones.
func bystander(args []string) {
	mustInstall()
	mustStart(exec.Command("true"))
	say("started on %v", multiexit.Containment())
	multiexit.Exit(0)
}

// While the guardian of a SIGKILLed parent waits for the workers' hooks,
// another program's Start leaves that tree alone: the parent's cgroup is
// not stale while its guardian lives. The hook, finishing after that
// Start, completes, and the guardian then removes the cgroup. With the
// guardian killed too, the tree is stale, and that Start removes it.
func TestGuardedTreeOutlivesAnotherStart(t *testing.T) {
	if !cgroupWritable() {
		t.Skip("needs a writable cgroup v2 (the guardian's layer)")
	}
	if rerunInPrivatePIDNamespace(t) {
		return
	}
	for _, guardianKilled := range []bool{false, true} {
		t.Run(fmt.Sprintf("guardian killed %v", guardianKilled), func(t *testing.T) {
			guardedTreeCase(t, guardianKilled)
		})
	}
}

// privatePIDNSVar marks a test binary that rerunInPrivatePIDNamespace
// started.
const privatePIDNSVar = "MX_PRIVATE_PIDNS"

// rerunInPrivatePIDNamespace runs the test t again, alone, in a test binary
// that is PID 1 of a new PID namespace, if it can (as root, with unshare)
// and this binary is not that one; it reports whether it did, and fails t
// if that run failed. A program judges stale only the tree cgroups of its
// own PID namespace: there, no other multiexit program on the machine —
// one built before the guardian's lock, which would take the tree of a
// SIGKILLed parent for stale — can interfere with the test.
func rerunInPrivatePIDNamespace(t *testing.T) bool {
	t.Helper()
	if os.Getenv(privatePIDNSVar) != "" {
		return false
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil || os.Getuid() != 0 {
		t.Log("run in this PID namespace (a private one needs root and unshare): a multiexit program built before the guardian's lock, running meanwhile, would fail the test")
		return false
	}
	cmd := exec.Command(unshare, "--pid", "--fork", "--mount-proc", os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), privatePIDNSVar+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in a private PID namespace: %v\n%s", err, out)
	}
	t.Logf("in a private PID namespace:\n%s", out)
	return true
}

func guardedTreeCase(t *testing.T, guardianKilled bool) {
	fifo := filepath.Join(t.TempDir(), "cue")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Held open for reading and writing: the hook's open does not block,
	// and it reads the cue whenever the test writes it.
	cue, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer cue.Close()
	p := start(t, hookOnCue, []string{fifo})
	p.WaitAll("ready main", "ready w")
	pid := p.Cmd.Process.Pid
	root := ""
	for _, mnt := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		m, _ := filepath.Glob(fmt.Sprintf("%s/*/multiexit.*.%d.*", mnt, pid))
		m2, _ := filepath.Glob(fmt.Sprintf("%s/multiexit.*.%d.*", mnt, pid))
		if m = append(m, m2...); len(m) > 0 {
			root = m[0]
		}
	}
	if root == "" {
		t.Fatal("the tree's cgroup was not found")
	}
	if guardianKilled {
		g := guardianOf(t, pid)
		syscall.Kill(g, syscall.SIGKILL)
		proctest.WaitExited(g)
	}
	p.Signal(syscall.SIGKILL)
	p.WaitFor("w hook begins")
	// Reaped, so that the parent's PID names no process: its cgroup looks
	// stale to any other program. (The output is read below; proctest's
	// cleanup does not wait for a reaped process again.)
	if _, err := p.Cmd.Process.Wait(); err != nil {
		t.Fatal(err)
	}
	b := start(t, bystander, nil)
	b.check([]string{"started on cgroup"}, exitCode(0))
	_, err = os.Stat(root)
	switch {
	case guardianKilled && err == nil:
		t.Errorf("another program's Start left the stale tree %s", root)
	case !guardianKilled && err != nil:
		t.Errorf("another program's Start removed the guarded tree's cgroup: %v", err)
	}
	cue.WriteString("go\n")
	trace := p.Rest() // EOF: the worker and the guardian are gone
	if done := slices.Contains(trace, "w hook done"); done == guardianKilled {
		t.Errorf("hook done: %v, want %v; output %q; stderr:\n%s", done, !guardianKilled, trace, p.Stderr.String())
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the tree's cgroup is left: %v", err)
	}
	// proctest's cleanup proves that no process is left.
}

// guardianOf finds the guardian among the children of pid.
func guardianOf(t *testing.T, pid int) int {
	t.Helper()
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, task := range tasks {
		b, _ := os.ReadFile(task)
		for _, f := range strings.Fields(string(b)) {
			env, _ := os.ReadFile("/proc/" + f + "/environ")
			if strings.Contains("\x00"+string(env), "\x00MULTIEXIT_GUARDIAN=") {
				child, _ := strconv.Atoi(f)
				return child
			}
		}
	}
	t.Fatalf("process %d has no guardian", pid)
	return 0
}

// stoppedWorker: main starts a worker w with its own hook; both say their
// PIDs.
func stoppedWorker(args []string) {
	mustInstall()
	if role() == "main" {
		mustStart(multiexit.Command("w"))
	} else {
		multiexit.Register(own)
	}
	sayReady(role())
	select {}
}

// A worker that is stopped (SIGSTOP) when the shutdown comes still runs its
// hooks: SIGCONT goes with SIGTERM.
func TestStoppedWorkerStillRunsItsHooks(t *testing.T) {
	p := start(t, stoppedWorker, nil)
	ready := p.WaitAll("ready main", "ready w")
	if err := syscall.Kill(proctest.LastPID(ready["ready w"]), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGTERM)
	p.check([]string{"w own"}, diedOf(syscall.SIGTERM))
}

// crash: main starts four workers that exit 3, panic, fault and are
// SIGKILLed, waits for them, and exits 0; it logs at Info.
func crash(args []string) {
	// At Info: an exit the caller waits for is reported at Info, one
	// nobody waits for at Warn, and here both happen.
	mustInstall(multiexit.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	if role() == "main" {
		kids := mustStart(multiexit.Command("exit3"), multiexit.Command("panic"), multiexit.Command("segv"), multiexit.Command("killed"))
		for _, k := range kids {
			k.Wait()
		}
		multiexit.Exit(0)
	}
	switch role() {
	case "exit3":
		os.Exit(3)
	case "panic":
		panic("worker panics")
	case "segv":
		var p *int
		println(*p) // a real fault: the Go runtime reports it and exits 2
	case "killed":
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	select {}
}

// A worker that exits early, panics or segfaults is reaped and reported
// with its status.
func TestCrashedWorkersAreReported(t *testing.T) {
	p := start(t, crash, nil)
	p.check(nil, exitCode(0))
	errLog := p.Stderr.String()
	for _, s := range []string{"exit status 3", "exit status 2", "worker panics", "segmentation violation", "signal: killed"} {
		if !strings.Contains(errLog, s) {
			t.Errorf("stderr does not report %q:\n%s", s, errLog)
		}
	}
}

// pid1 runs as PID 1 of a namespace: a child leaves a zombie and an escapee
// behind, it SIGTERMs itself, and its hook counts the other processes and
// the zombies left.
func pid1(args []string) {
	mustInstall()
	multiexit.Register(func(ctxArg contextT) error {
		others, zombies := 0, 0
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			pid, _ := strconv.Atoi(filepath.Base(d))
			if pid == os.Getpid() {
				continue
			}
			b, err := os.ReadFile(d + "/stat")
			if err != nil {
				continue
			}
			if env, _ := os.ReadFile(d + "/environ"); strings.Contains(string(env), "MULTIEXIT_GUARDIAN=") {
				continue // it outlives the hooks, to clean up the cgroups
			}
			others++
			if i := strings.LastIndexByte(string(b), ')'); i > 0 && b[i+2] == 'Z' {
				zombies++
			}
		}
		say("pid %d; other processes %d; zombies %d", os.Getpid(), others, zombies)
		return nil
	})
	// A zombie-maker: the inner sh exits and its parent, exec'd into
	// sleep, never reaps it; when the sleep is stopped, the zombie
	// goes to PID 1. Plus an escapee.
	ext := exec.Command("sh", "-c", `sh -c "exit 3" & setsid sleep 1000 >/dev/null 2>&1 & exec sleep 1000`)
	mustStart(ext)
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {}
}

// As PID 1 of a PID namespace (a container's init), the process reaps every
// zombie and still exits with 128+signal.
func TestPID1ReapsZombies(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare")
	}
	if os.Getuid() != 0 {
		t.Skip("needs root for a PID namespace")
	}
	p := startWith(t, func(cmd *exec.Cmd) {
		cmd.Args = append([]string{"unshare", "--pid", "--fork", "--mount-proc", cmd.Path}, cmd.Args[1:]...)
		cmd.Path, _ = exec.LookPath("unshare")
	}, pid1, nil)
	p.check([]string{"pid 1; other processes 0; zombies 0"}, exitCode(143)) // PID 1 cannot die by its own signal
}

// installOnly installs, says its containment layer and leaves by os.Exit.
func installOnly(args []string) {
	mustInstall()
	say("layer %v", multiexit.Containment())
	os.Exit(0) // no hooks, no guardian: nothing may be left
}

// A process that installs but never starts children makes no cgroup, so
// leaving by os.Exit leaves none behind; it still reports the layer a
// Start would use (Install leaves the cgroup probe to the first need, and
// Containment is one).
func TestInstallAloneLeavesNoCgroup(t *testing.T) {
	p := start(t, installOnly, nil)
	trace, how := p.end()
	if how != exitCode(0) || len(trace) != 1 {
		t.Fatalf("ended with %s, trace %q", how, trace)
	}
	if want := "layer " + layers(t)[0]; trace[0] != want {
		t.Errorf("Containment after Install alone said %q, want %q", trace[0], want)
	}
	pid := p.Cmd.Process.Pid
	for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		left, _ := filepath.Glob(fmt.Sprintf("%s/multiexit.*.%d.*", root, pid))
		if len(left) > 0 {
			t.Errorf("%s left %v", trace[0], left)
		}
	}
}

// A value of MULTIEXIT_CONTAINMENT that names no layer is reported, not
// silently taken for the default.
func TestUnknownContainmentIsReported(t *testing.T) {
	p := start(t, installOnly, nil, multiexit.ContainmentVar+"=process_group")
	trace, how := p.end()
	if how != exitCode(0) || len(trace) != 1 {
		t.Fatalf("ended with %s, trace %q", how, trace)
	}
	if s := p.Stderr.String(); !strings.Contains(s, "unknown containment layer") || !strings.Contains(s, `value=process_group`) {
		t.Errorf("the unknown value is not reported:\n%s", s)
	}
}

package multiexit_test

// The fault-injection suite: real process trees, faults injected at random
// moments, and counts (survivors, zombies, hooks) asserted, never times.
// MX_SOAK=1 runs the long version:
//
//	MX_SOAK=1 go test -race -run Fault -timeout 60m .

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/multiexit/multiexit"
)

func init() { scenario(startupKill, blocked, holder, hostile, pidReuse, cycles) }

func soak() bool { return os.Getenv("MX_SOAK") != "" }

func trials(ci, long int) int {
	if soak() {
		return long
	}
	return ci
}

// lineWriter hands what it is written to os.Stdout, so that a command's
// output goes through exec's copying goroutine instead of a descriptor.
type lineWriter struct{}

func (lineWriter) Write(p []byte) (int, error) { return os.Stdout.Write(p) }

// startupKill: main starts the workers w0 and w1, each with its own hook,
// and an external child running escapeScript.
func startupKill(args []string) {
	mustInstall()
	if role() != "main" {
		multiexit.Register(own)
		say("ready %s", role())
		select {}
	}
	ext := exec.Command("sh", "-c", escapeScript)
	ext.Stdout = os.Stdout
	mustStart(multiexit.Command("w0"), multiexit.Command("w1"), ext)
	say("ready main")
	select {}
}

// The parent is SIGKILLed at a random moment of its start-up: no process
// of the tree survives and no zombie is left.
func TestFaultKillDuringStartup(t *testing.T) {
	n := trials(200, 1000)
	lines := []string{"ready ext", "ready esc", "ready w0", "ready w1", "ready main"}
	for i := range n {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			p := start(t, startupKill, nil)
			k := rand.IntN(len(lines) + 1) // how many lines to let through first
			for j := 0; j < k; j++ {
				if _, ok := p.Next(); !ok {
					break
				}
			}
			p.Signal(syscall.SIGKILL)
			p.end() // EOF: every process that held the pipe is gone
			// proctest's cleanup counts survivors and zombies.
		})
	}
}

// blocked: the parent starts with SIGTERM blocked and SIGINT ignored, as
// some supervisors leave them, then becomes the "escape" scenario.
func blocked(args []string) {
	// The main goroutine is locked to the main thread (lockMain), which
	// is the one that execs: its mask and ignored dispositions carry over.
	var set unix.Sigset_t
	set.Val[0] = 1 << (uint(syscall.SIGTERM) - 1)
	unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil)
	signal.Ignore(syscall.SIGINT)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, scenarioVar+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, scenarioEnv(escape))
	err := syscall.Exec(os.Args[0], os.Args[:1], env)
	panic(err)
}

// termStopsTree sends p SIGTERM once its tree is up (escapeReady) and
// checks that its hook H1 ran and that it died by SIGTERM.
func termStopsTree(p *proc) {
	p.t.Helper()
	p.signalWhenReady(syscall.SIGTERM, escapeReady...)
	p.check([]string{"H1"}, diedOf(syscall.SIGTERM))
}

func TestFaultSignalsBlockedAtStart(t *testing.T) {
	termStopsTree(start(t, blocked, nil))
}

// holder: hook H1, and an external child whose escaped grandchild holds the
// pipe behind exec's copying goroutine (lineWriter).
func holder(args []string) {
	mustInstall(multiexit.WithGrace(200 * time.Millisecond))
	multiexit.Register(hook("H1"))
	// The escaped grandchild holds the pipe behind the copying
	// goroutine: only WaitDelay lets Wait return.
	ext := exec.Command("sh", "-c", `setsid sh -c 'echo ready esc; exec sleep 1000' & echo ready ext; exec sleep 1000`)
	ext.Stdout = lineWriter{}
	mustStart(ext)
	say("ready main")
	select {}
}

// A grandchild that holds the child's output pipe does not block the
// shutdown past WaitDelay (set to the grace period when unset).
func TestFaultGrandchildHoldsPipe(t *testing.T) {
	termStopsTree(start(t, holder, nil))
}

// hostile: hook H1, and an external child with a descendant that leaves its
// process group and the entry's cgroup (args[0] is the cgroup root), the
// child itself ignoring every signal it can.
func hostile(args []string) {
	mustInstall(multiexit.WithGrace(200 * time.Millisecond))
	multiexit.Register(hook("H1"))
	// A descendant that leaves both its process group and the
	// entry's cgroup, and one that blocks every signal it can.
	ext := exec.Command("sh", "-c", `setsid sh -c 'echo $$ > "$CGROOT/cgroup.procs" && echo ready esc; exec sleep 1000 >/dev/null 2>&1' & trap "" TERM INT HUP QUIT USR1 USR2; echo ready ext; while :; do sleep 1000; done`)
	ext.Env = append(os.Environ(), "CGROOT="+args[0])
	ext.Stdout = os.Stdout
	mustStart(ext)
	say("ready main")
	select {}
}

// A descendant that moves itself out of the entry's cgroup and its group
// is still found (by its tag, as an orphan of this process) and stopped,
// and reported; one that ignores every signal it can is SIGKILLed.
func TestFaultHostileDescendants(t *testing.T) {
	if !cgroupWritable() {
		t.Skip("needs a writable cgroup v2")
	}
	root := "/sys/fs/cgroup/unified"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.procs"); err == nil {
		root = "/sys/fs/cgroup"
	}
	outsider(t)
	p := start(t, hostile, []string{root})
	termStopsTree(p)
	if s := p.Stderr.String(); !strings.Contains(s, "descendants left the entry's cgroup") {
		t.Errorf("the escape from the cgroup is not reported:\n%s", s)
	}
}

// pidReuse: as PID 1 of a namespace with a small pid_max: a child exits by
// itself and is reaped; a process outside the tree is then given its PID
// (ns_last_pid, as checkpoint/restore tools do); stopping the child and its
// entry must not signal that process.
func pidReuse(args []string) {
	mustInstall(multiexit.WithGrace(time.Second))
	n, _ := strconv.Atoi(args[0])
	reused, hit := 0, 0
	for range n {
		kids := mustStart(exec.Command("sh", "-c", "exit 7"), exec.Command("sleep", "1000"))
		pid := kids[0].PID()
		kids[0].Wait()
		var x *exec.Cmd
		for try := 0; try < 20 && x == nil; try++ {
			os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0)
			c := exec.Command("sleep", "1000") // outside the tree: plain exec
			if err := c.Start(); err != nil {
				panic(err)
			}
			if c.Process.Pid == pid {
				x = c
				break
			}
			c.Process.Kill()
			c.Wait()
		}
		kids[0].Stop()
		kids[1].Stop()
		if x == nil {
			continue
		}
		reused++
		// Alive, and when killed now, killed by this SIGKILL and not
		// by anything before it.
		if err := x.Process.Signal(syscall.Signal(0)); err != nil {
			hit++
			say("outsider pid %d was dead before the test killed it: %v", pid, err)
		}
		x.Process.Kill()
		if err := x.Wait(); err == nil || !strings.Contains(err.Error(), "signal: killed") {
			hit++
			say("outsider pid %d ended with %v", pid, err)
		}
	}
	say("trials %d; PID taken over %d; outsiders signalled %d", n, reused, hit)
	multiexit.Exit(0)
}

func TestFaultPIDReuse(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil || os.Getuid() != 0 {
		t.Skip("needs unshare and root for a PID namespace")
	}
	n := trials(1000, 5000)
	p := startWith(t, func(cmd *exec.Cmd) {
		// A small pid_max of the namespace's own (Linux 6.14+; elsewhere
		// the write fails and PIDs are handed over through ns_last_pid alone).
		// As PID 1: the runtime reaps orphaned zombies there, and must
		// still leave the outsider's exit status to its Wait.
		cmd.Args = append([]string{"unshare", "--pid", "--fork", "--mount-proc", "sh", "-c",
			`echo 400 > /proc/sys/kernel/pid_max 2>/dev/null; exec "$0" "$@"`, cmd.Path}, cmd.Args[1:]...)
		cmd.Path, _ = exec.LookPath("unshare")
	}, pidReuse, []string{strconv.Itoa(n)})
	trace, how := p.end()
	if how != exitCode(0) || len(trace) == 0 {
		t.Fatalf("ended with %s, trace %q; stderr:\n%s", how, trace, p.Stderr.String())
	}
	var got, reused, hit int
	last := trace[len(trace)-1]
	if _, err := fmt.Sscanf(last, "trials %d; PID taken over %d; outsiders signalled %d", &got, &reused, &hit); err != nil {
		t.Fatal(err)
	}
	if hit != 0 {
		t.Errorf("%q", trace)
	}
	if reused < n*9/10 {
		t.Errorf("too few PIDs were taken over for the test to mean anything: %s", last)
	}
	t.Log(last)
}

// cycles starts and stops a worker and an external command args[0] times
// and reports what is left against the baseline.
func cycles(args []string) {
	mustInstall(multiexit.WithGrace(time.Second))
	if role() != "main" {
		select {}
	}
	cycle := func() {
		kids := mustStart(multiexit.Command("w"), exec.Command("sleep", "1000"))
		for _, k := range kids {
			k.Stop()
		}
	}
	cycle() // the first Start starts the fork thread and the guardian for good
	fds := countFDs()
	opt := goleak.IgnoreCurrent()
	n, _ := strconv.Atoi(args[0])
	for range n {
		cycle()
	}
	say("goroutines: %v", goleak.Find(opt))
	say("descriptors: %d more", countFDs()-fds)
	// The tree's cgroup is multiexit.<pid namespace>.<pid>.<start time>.
	left, _ := filepath.Glob(fmt.Sprintf("/sys/fs/cgroup/unified/multiexit.*.%d.*/e*", os.Getpid()))
	left2, _ := filepath.Glob(fmt.Sprintf("/sys/fs/cgroup/multiexit.*.%d.*/e*", os.Getpid()))
	say("entry cgroups left: %d", len(left)+len(left2))
	multiexit.Exit(0)
}

// countFDs counts open descriptors, but for the reaper's passing reads of
// /proc, which another goroutine may hold open at any moment.
func countFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && !strings.HasPrefix(l, "/proc/") {
			n++
		}
	}
	return n
}

// Start and stop, over and over: descriptors, goroutines and cgroups come
// back to their baseline.
func TestFaultStartStopCycles(t *testing.T) {
	n := trials(50, 10000)
	p := start(t, cycles, []string{strconv.Itoa(n)})
	p.check([]string{"goroutines: <nil>", "descriptors: 0 more", "entry cgroups left: 0"}, exitCode(0))
}

// A tree three workers deep, with a leaf that ignores SIGTERM and an
// escapee at the bottom, stopped by SIGTERM or by SIGKILL of its top, over
// and over: every level runs its hooks, leaves first, and nothing is left.
func TestFaultDeepTree(t *testing.T) {
	for i := range trials(1, 20) {
		for _, how := range []string{"term", "kill"} {
			t.Run(fmt.Sprintf("%d %s", i, how), func(t *testing.T) { deepTreeCase(t, 3, how, "-", "-") })
		}
	}
}

// A long loop of shell-outs that leave background processes (plain and
// double-forked) holds no zombie, on the layer the machine gives.
func TestFaultShellOutLoop(t *testing.T) {
	n := trials(3000, 50000)
	p := start(t, shellOuts, []string{strconv.Itoa(n)})
	trace, how := p.end()
	if how != exitCode(0) || len(trace) != 2 || trace[0] != "late Wait: exit status 7" || !strings.HasSuffix(trace[1], "zombies left: 0") {
		t.Errorf("ended with %s, trace %q; stderr:\n%s", how, trace, p.Stderr.String())
	}
}

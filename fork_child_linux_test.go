package multiexit_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/multiexit/multiexit"
	"github.com/multiexit/multiexit/internal/proctest"
)

func init() {
	scenario(cascade, orphans, external, externalMix, pool, startup, workerEnv, engineEnv, sigpipe, badRegistry, dupDefine, badArg)
}

// barrierWait connects to the test's barrier, says name, and waits until
// the test releases it.
func barrierWait(name string) {
	c, err := net.Dial("unix", os.Getenv("MX_BARRIER"))
	if err != nil {
		say("%s barrier: %v", name, err)
		return
	}
	defer c.Close()
	c.Write([]byte(name + "\n"))
	io.ReadAll(c)
}

// barrier is the test's side: it proves that n processes are at one point
// at once, without any timing.
type barrier struct {
	t     *testing.T
	ln    net.Listener
	conns []net.Conn
}

func newBarrier(t *testing.T) (*barrier, string) {
	path := filepath.Join(t.TempDir(), "barrier")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	b := &barrier{t: t, ln: ln}
	t.Cleanup(b.release)
	return b, "MX_BARRIER=" + path
}

func (b *barrier) wait(n int) {
	for len(b.conns) < n {
		c, err := b.ln.Accept()
		if err != nil {
			b.t.Fatal(err)
		}
		b.conns = append(b.conns, c)
	}
}

func (b *barrier) release() {
	for _, c := range b.conns {
		c.Close()
	}
	b.conns = nil
	b.ln.Close()
}

var cascadeOrder = []string{"main L(7)", "w2 own", "w2 S(s)", "w1 own", "w1 S(s)", "main own", "main S(s)"}

// cascade: main registers S, its own hook, starts w1, registers L; w1
// registers its own hook and starts w2; w2 registers its own hook.
func cascade(args []string) {
	mustInstall()
	switch role() {
	case "main":
		sharedS.Register("s")
		multiexit.Register(own)
		mustStart(multiexit.Command("w1"))
		sharedL.Register(7)
	case "w1":
		multiexit.Register(own)
		mustStart(multiexit.Command("w2"))
		ping := make(chan os.Signal, 1)
		signal.Notify(ping, syscall.SIGUSR1)
		go func() {
			for range ping {
				say("ready pong")
			}
		}()
	case "w2":
		multiexit.Register(own)
	}
	sayReady(role())
	select {}
}

func TestCascade(t *testing.T) {
	p := start(t, cascade, nil)
	p.signalWhenReady(syscall.SIGTERM, "ready main", "ready w1", "ready w2")
	p.check(cascadeOrder, diedOf(syscall.SIGTERM))
	p.Quiet()
}

// A terminal's Ctrl-C reaches the foreground process group: the parent's.
// Workers have groups of their own and ignore SIGINT sent to them.
func TestTerminalInterrupt(t *testing.T) {
	p := startWith(t, func(cmd *exec.Cmd) {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // as a shell starts a job
	}, cascade, nil)
	ready := p.WaitAll("ready main", "ready w1", "ready w2")
	w1 := proctest.LastPID(ready["ready w1"])
	if err := syscall.Kill(w1, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	// SIGUSR1 after SIGINT: by the time w1 answers it, it has taken SIGINT.
	if err := syscall.Kill(w1, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	p.WaitFor("ready pong")
	if err := syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	p.check(cascadeOrder, diedOf(syscall.SIGINT))
}

// orphans: main, with the shared hook S, starts the workers a and b, each
// with its own hook. With an argument their Pdeathsig is SIGUSR2 instead of
// the runtime's, so that only the control channel's end tells them main
// died; MX_DROP_PRIVILEGES makes them drop their privileges.
func orphans(args []string) {
	mustInstall()
	if role() == "main" {
		sharedS.Register("s")
		a, b := multiexit.Command("a"), multiexit.Command("b")
		if len(args) > 0 { // parent death seen only as EOF on the control channel
			a.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGUSR2}
			b.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGUSR2}
		}
		mustStart(a, b)
	} else {
		multiexit.Register(own)
		if os.Getenv("MX_DROP_PRIVILEGES") != "" {
			// Changing credentials clears Pdeathsig (prctl(2)).
			if err := syscall.Setgid(65534); err != nil {
				panic(err)
			}
			if err := syscall.Setuid(65534); err != nil {
				panic(err)
			}
		}
	}
	say("ready %s", role())
	select {}
}

func TestParentDeath(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  []string
	}{
		{"Pdeathsig and the control channel's end", nil, nil},
		{"the control channel's end only", []string{"eof"}, nil},
		// The kernel clears Pdeathsig when a process changes its
		// credentials: the control channel's end must still tell.
		{"worker dropped its privileges", nil, []string{"MX_DROP_PRIVILEGES=1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != nil && os.Geteuid() != 0 {
				t.Skip("needs root to drop privileges")
			}
			p := start(t, orphans, tc.args, tc.env...)
			p.signalWhenReady(syscall.SIGKILL, "ready main", "ready a", "ready b")
			trace, how := p.end() // EOF: every process of the tree has exited
			if how != "signal killed" {
				t.Errorf("parent ended with %s", how)
			}
			for _, w := range []string{"a", "b"} {
				var got []string
				for _, l := range trace {
					if strings.HasPrefix(l, w+" ") {
						got = append(got, l)
					}
				}
				if diff := cmp.Diff([]string{w + " own", w + " S(s)"}, got); diff != "" {
					t.Errorf("worker %s (-want +got):\n%s\nstderr:\n%s", w, diff, p.Stderr.String())
				}
			}
		})
	}
}

// external: hooks H1 and H2 around an external child: args[0] "group" traps
// SIGTERM and has two sleeps in its process group, "stubborn" ignores
// SIGTERM.
func external(args []string) {
	script := map[string]string{
		"group":    `trap 'echo E stopped; exit 0' TERM; sleep 1000 >/dev/null & sleep 1000 >/dev/null & echo ready ext; wait`,
		"stubborn": `trap '' TERM; echo ready ext; exec sleep 1000 >/dev/null`,
	}[args[0]]
	hooksAround(200*time.Millisecond, script)
}

// hooksAround is a parent's scenario: with the grace period grace, hook H1,
// then an external child running script (its output on this process's),
// then hook H2; it says "ready main" and waits for a signal.
func hooksAround(grace time.Duration, script string) {
	mustInstall(multiexit.WithGrace(grace))
	multiexit.Register(hook("H1"))
	cmd := exec.Command("sh", "-c", script)
	cmd.Stdout = os.Stdout
	mustStart(cmd)
	multiexit.Register(hook("H2"))
	say("ready main")
	select {}
}

func TestExternalCommands(t *testing.T) {
	t.Run("process group stopped whole, in its LIFO place", func(t *testing.T) {
		p := start(t, external, []string{"group"})
		p.signalWhenReady(syscall.SIGTERM, "ready main", "ready ext")
		p.check([]string{"H2", "E stopped", "H1"}, diedOf(syscall.SIGTERM))
		p.Quiet()
	})
	t.Run("SIGTERM ignored: SIGKILL after the grace period", func(t *testing.T) {
		p := start(t, external, []string{"stubborn"})
		p.signalWhenReady(syscall.SIGTERM, "ready main", "ready ext")
		p.check([]string{"H2", "H1"}, diedOf(syscall.SIGTERM))
		if !strings.Contains(p.Stderr.String(), "did not stop within its grace period") {
			t.Errorf("the kill is not reported:\n%s", p.Stderr.String())
		}
	})
}

// externalMix: hook H1, then one Start of two external children: one
// ignores SIGTERM, the other exits on it and leaves a member of its process
// group that ignores it. The member says "member PID" once it ignores
// SIGTERM: a SIGTERM before its trap would kill it, and the test would not
// see whether the stop kills it.
func externalMix([]string) {
	mustInstall(multiexit.WithGrace(300 * time.Millisecond))
	multiexit.Register(hook("H1"))
	// One Start, one shared grace period: the first child ignores
	// SIGTERM; the second exits on it, leaving a member of its
	// process group that ignores SIGTERM.
	stubborn := exec.Command("sh", "-c", `trap '' TERM; echo ready stubborn; exec sleep 1000 >/dev/null`)
	leader := exec.Command("sh", "-c", `trap 'exit 0' TERM; sh -c 'trap "" TERM; echo "member $$"; exec sleep 1000 >/dev/null' & echo ready leader; wait`)
	stubborn.Stdout, leader.Stdout = os.Stdout, os.Stdout
	mustStart(stubborn, leader)
	say("ready main")
	select {}
}

// The children of one Start share a grace period: the one that ignores
// SIGTERM is killed when it runs out, and the one that exits has the rest of
// its process group killed as it does. The process-group layer is forced:
// a cgroup's sweep would otherwise kill the member too. SIGTERM is sent
// once the member said it ignores SIGTERM (its "member" line).
func TestStopKillsWhatIsLeftOfEachGroup(t *testing.T) {
	p := start(t, externalMix, nil, multiexit.ContainmentVar+"="+multiexit.LayerProcessGroup.String())
	seen := p.WaitAll("member ", "ready stubborn", "ready leader", "ready main")
	member, err := strconv.Atoi(strings.TrimPrefix(seen["member "], "member "))
	if err != nil {
		t.Fatal(err)
	}
	fd := proctest.Pidfd(t, member)
	p.Signal(syscall.SIGTERM)
	trace, how := p.end()
	if diff := cmp.Diff([]string{"H1"}, slices.DeleteFunc(trace, func(l string) bool { return strings.HasPrefix(l, "member ") })); diff != "" || how != diedOf(syscall.SIGTERM) {
		t.Errorf("ended with %s; trace (-want +got):\n%s\nstderr:\n%s", how, diff, p.Stderr.String())
	}
	if n := strings.Count(p.Stderr.String(), "did not stop within its grace period"); n != 1 {
		t.Errorf("%d grace periods reported as run out, want 1 (the stubborn child's):\n%s", n, p.Stderr.String())
	}
	// The member was SIGKILLed before the parent exited; it may still be
	// on its way out. Its pidfd becomes readable when it has exited.
	if !proctest.Exited(fd, 10*time.Second) {
		t.Fatalf("the member %d of the exited child's group is still running", member)
	}
}

// pool: main, with S and its own hook, starts args[0] workers whose hook
// waits at the test's barrier.
func pool(args []string) {
	mustInstall()
	if role() == "main" {
		sharedS.Register("s")
		multiexit.Register(own)
		n, _ := strconv.Atoi(args[0])
		var cmds []*exec.Cmd
		for i := range n {
			cmds = append(cmds, multiexit.Command(fmt.Sprintf("w%d", i)))
		}
		mustStart(cmds...)
	} else {
		multiexit.Register(func(ctx context.Context) error {
			say("%s stopping", role())
			barrierWait(role())
			say("%s own", role())
			return nil
		})
	}
	say("ready %s", role())
	select {}
}

// The workers of one Start call stop concurrently: the barrier only opens
// once all of them are inside their hooks at the same time.
func TestPoolStopsConcurrently(t *testing.T) {
	const n = 4
	b, env := newBarrier(t)
	p := start(t, pool, []string{strconv.Itoa(n)}, env)
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("ready w%d", i))
	}
	p.WaitAll(append(want, "ready main")...)
	p.Signal(syscall.SIGTERM)
	b.wait(n)
	b.release()
	trace, how := p.end()
	if how != diedOf(syscall.SIGTERM) {
		t.Errorf("ended with %s; stderr:\n%s", how, p.Stderr.String())
	}
	for i := range n {
		w := fmt.Sprintf("w%d", i)
		var got []string
		for _, l := range trace {
			if strings.HasPrefix(l, w+" ") {
				got = append(got, l)
			}
		}
		if diff := cmp.Diff([]string{w + " stopping", w + " own", w + " S(s)"}, got); diff != "" {
			t.Errorf("worker %s (-want +got):\n%s", w, diff)
		}
	}
	if diff := cmp.Diff([]string{"main own", "main S(s)"}, trace[len(trace)-2:]); diff != "" {
		t.Errorf("the parent's hooks must run after every worker stopped (-want +got):\n%s", diff)
	}
}

// startup: main, with S and its own hook, starts the workers a, b and c,
// which wait at the test's barrier before Install, and says when Start
// returned.
func startup(args []string) {
	if role() != "main" {
		say("booting %s", role())
		barrierWait(role())
		multiexit.Register(own) // before Install: a stop may come right after the acknowledgement
		mustInstall()
		select {}
	}
	mustInstall()
	sharedS.Register("s")
	multiexit.Register(own)
	say("ready main")
	mustStart(multiexit.Command("a"), multiexit.Command("b"), multiexit.Command("c"))
	say("Start returned")
	select {}
}

// Start waits for every worker's acknowledgement of Install: a SIGTERM
// while every worker is held before Install finds Start still waiting, so
// Start returns the shutdown's error, and the workers still run their hooks.
//
// The absence of "Start returned" among the lines read so far would prove
// nothing: no line is ordered after the return of a Start that did not
// wait (main could print it at any later moment). What is ordered is the
// SIGTERM, sent once every worker is held: Start returns the shutdown's
// error only if it had not returned when the shutdown began. So the whole
// output, read to its end, must hold "start error: ..." and never "Start
// returned". (Start also returns that error if the shutdown begins before
// it has recorded its last child, which would need main to stall, between
// that child's exec and the next statement, for as long as the worker
// takes to boot and reach the barrier.)
func TestStartWaitsForAcknowledgement(t *testing.T) {
	b, env := newBarrier(t)
	p := start(t, startup, nil, env)
	p.WaitAll("ready main", "booting a", "booting b", "booting c")
	b.wait(3) // every worker is held before Install, so before its acknowledgement
	p.Signal(syscall.SIGTERM)
	b.release()
	trace, how := p.end()
	if how != diedOf(syscall.SIGTERM) {
		t.Errorf("ended with %s; stderr:\n%s", how, p.Stderr.String())
	}
	if slices.Contains(trace, "Start returned") || !slices.Contains(trace, "start error: multiexit: Start: the shutdown has begun") {
		t.Errorf("Start did not wait for the acknowledgements: it should have been waiting when SIGTERM came, and returned the shutdown's error: %q", trace)
	}
	for _, w := range []string{"a", "b", "c"} {
		i, j := slices.Index(trace, w+" own"), slices.Index(trace, w+" S(s)")
		if i < 0 || j < i {
			t.Errorf("worker %s did not run its own hook then S: %q", w, trace)
		}
	}
	if k := slices.Index(trace, "main own"); k < len(trace)-2 {
		t.Errorf("main's hooks must run after every worker stopped: %q", trace)
	}
}

// workerEnv: a worker says what it and its own child see of MULTIEXIT, its
// Pdeathsig and IsChild.
func workerEnv(args []string) {
	if role() == "main" {
		mustInstall()
		w := multiexit.Command("w")
		w.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGUSR2}
		kids := mustStart(w)
		kids[0].Wait()
		multiexit.Exit(0)
	}
	mustInstall()
	out, err := exec.Command("sh", "-c", `echo "${`+multiexit.EnvVar+`-unset}"`).Output()
	if err != nil {
		say("sh: %v", err)
	}
	say("grandchild sees MULTIEXIT=%s", strings.TrimSpace(string(out)))
	say("worker sees MULTIEXIT set: %v", os.Getenv(multiexit.EnvVar) != "")
	say("worker pdeathsig: %v", pdeathsig())
	say("IsChild: %v", multiexit.IsChild())
	multiexit.Exit(0)
}

func TestWorkerEnvironment(t *testing.T) {
	p := start(t, workerEnv, nil)
	p.check([]string{
		"grandchild sees MULTIEXIT=unset",
		"worker sees MULTIEXIT set: false",
		"worker pdeathsig: 12",
		"IsChild: true",
	}, exitCode(0))
	p.Quiet()
}

// engineVarNames are the service manager's variables meant for the process
// it started alone.
var engineVarNames = []string{"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_PID", "WATCHDOG_USEC"}

// engineEnv: main, started with the service manager's variables, starts a
// worker and an external command; each says which of them it sees.
func engineEnv(args []string) {
	mustInstall()
	show := `echo "$0:"`
	for _, name := range engineVarNames {
		show += ` "${` + name + `-}"`
	}
	if role() == "w" {
		out, _ := exec.Command("sh", "-c", show, "w").Output()
		say("%s", strings.TrimSuffix(string(out), "\n"))
		sayReady("w")
		select {}
	}
	ext := exec.Command("sh", "-c", show+"; echo ready ext; exec sleep 1000", "ext")
	ext.Stdout = os.Stdout
	mustStart(multiexit.Command("w"), ext)
	sayReady("main")
	select {}
}

// Workers, external children and the guardian inherit none of the service
// manager's variables meant for this process: NOTIFY_SOCKET, LISTEN_*,
// and WATCHDOG_* (a child that sent WATCHDOG=1 would speak for it).
func TestChildrenGetNoEngineVariables(t *testing.T) {
	var env []string
	for _, name := range engineVarNames {
		env = append(env, name+"=1")
	}
	p := start(t, engineEnv, nil, env...)
	p.WaitAll("ready main", "ready w", "ready ext")
	if cgroupWritable() {
		g := guardianOf(t, p.Cmd.Process.Pid)
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", g))
		if err != nil {
			t.Fatal(err)
		}
		for kv := range strings.SplitSeq(string(b), "\x00") {
			name, _, _ := strings.Cut(kv, "=")
			if slices.Contains(engineVarNames, name) {
				t.Errorf("the guardian (pid %d) inherited %s", g, kv)
			}
		}
	}
	p.Signal(syscall.SIGTERM)
	trace, _ := p.end()
	slices.Sort(trace)
	want := []string{"ext:", "w:"}
	for i := range want {
		want[i] += strings.Repeat(" ", len(engineVarNames)) // each one empty
	}
	if diff := cmp.Diff(want, trace); diff != "" {
		t.Errorf("what the children see (-want +got):\n%s", diff)
	}
}

// sigpipe: a worker whose hook writes into its dead parent's pipe until the
// write fails.
func sigpipe(args []string) {
	mustInstall()
	if role() == "main" {
		w := multiexit.Command("w")
		r, wr, err := os.Pipe()
		if err != nil {
			panic(err)
		}
		w.Stdout = wr
		mustStart(w)
		wr.Close()
		buf := make([]byte, 64)
		n, _ := r.Read(buf) // the worker's "ready"; then nobody reads r
		say("%s", strings.TrimSpace(string(buf[:n])))
		say("ready main")
		select {}
	}
	multiexit.Register(func(ctx context.Context) error {
		// Until it fails: once the pipe's buffer is full the write
		// blocks until the dead parent's end is closed, then fails.
		chunk := strings.Repeat("into a dead parent's pipe\n", 100)
		var err error
		for err == nil {
			_, err = os.Stdout.WriteString(chunk)
		}
		fmt.Fprintf(os.Stderr, "worker hook ran; write error: %v\n", err)
		return nil
	})
	say("ready w")
	select {}
}

func TestWorkerSurvivesDeadParentPipe(t *testing.T) {
	p := start(t, sigpipe, nil)
	p.signalWhenReady(syscall.SIGKILL, "ready w", "ready main")
	p.end()
	if s := p.Stderr.String(); !strings.Contains(s, "worker hook ran; write error:") || !strings.Contains(s, "broken pipe") {
		t.Errorf("the worker's hook did not run past EPIPE; stderr:\n%s", s)
	}
}

// badRegistry installs with the MULTIEXIT value the test gave, and says the
// error and what Install left.
func badRegistry(args []string) {
	err := multiexit.Install()
	say("install error: %v", err)
	say("IsChild: %v; MULTIEXIT kept: %v", multiexit.IsChild(), os.Getenv(multiexit.EnvVar) != "")
	// Descriptors 3 and 4, where the test passed pipes, are as they
	// were: inheritable, blocking, without O_ASYNC.
	for _, fd := range []int{3, 4} {
		fdFlags, err1 := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		flFlags, err2 := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err1 == nil && err2 == nil && (fdFlags&unix.FD_CLOEXEC != 0 || flFlags&(unix.O_ASYNC|unix.O_NONBLOCK) != 0) {
			say("descriptor %d was changed", fd)
		}
	}
	os.Exit(1)
}

func TestBadRegistry(t *testing.T) {
	ppid := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		name, value, want string
		pipes             bool // pipes on descriptors 3 and 4, and as standard input and output
	}{
		{"garbage", "%%garbage", "not a multiexit registry", false},
		{"truncated", "1:" + ppid + ":3,4:[{\"n\":\"S\",\"a\":", "truncated", false},
		{"replayed under another parent", "1:1:3,4:[]", "registry was written for parent PID 1", true},
		{"standard descriptors", "1:" + ppid + ":0,1:[]", "control id 0 is a standard descriptor", true},
		{"standard output", "1:" + ppid + ":3,1:[]", "control id 1 is a standard descriptor", true},
		{"the same descriptor twice", "1:" + ppid + ":3,3:[]", "control id 3 is given twice", true},
		{"control ids that are not pipes", "1:" + ppid + ":5,6:[]", "control channel: descriptor 5 is not a pipe", false},
		{"unknown version", "9:" + ppid + ":3,4:[]", `unknown format version "9"`, false},
		{"undefined hook", "1:" + ppid + ":3,4:[{\"n\":\"nope\",\"a\":1}]", `"nope" is not defined in this binary`, true},
		{"argument of the wrong type", "1:" + ppid + ":3,4:[{\"n\":\"L\",\"a\":\"x\"}]", `argument of "L"`, true},
		{"oversize", "1:" + ppid + ":3,4:[" + strings.Repeat(" ", multiexit.MaxRegistry) + "]", "more than the 65536 allowed", false},
		{"started with exec.Cmd.Start", "pending", "not multiexit.Start", false},
		{"control ids that are not open", "1:" + ppid + ":97,98:[]", "control channel: descriptor 97: bad file descriptor", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startWith(t, func(cmd *exec.Cmd) {
				null, err := os.Open(os.DevNull)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { null.Close() })
				// 3 and 4: pipes, or anything else (5 and 6 are never pipes).
				files := []*os.File{null, null, null, null}
				if tc.pipes {
					for i := range 2 {
						r, w, err := os.Pipe()
						if err != nil {
							t.Fatal(err)
						}
						t.Cleanup(func() { r.Close(); w.Close() })
						files[i] = r
					}
					r, w, err := os.Pipe()
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { r.Close(); w.Close() })
					cmd.Stdin = r
				}
				cmd.ExtraFiles = files
			}, badRegistry, nil, multiexit.EnvVar+"="+tc.value)
			trace, how := p.end()
			if how != exitCode(1) || len(trace) != 2 {
				t.Fatalf("ended with %s, trace %q; stderr:\n%s", how, trace, p.Stderr.String())
			}
			if !strings.HasPrefix(trace[0], "install error: multiexit: MULTIEXIT: ") || !strings.Contains(trace[0], tc.want) {
				t.Errorf("error %q does not say %q", trace[0], tc.want)
			}
			if trace[1] != "IsChild: true; MULTIEXIT kept: true" {
				t.Errorf("a failed Install changed the process: %q", trace[1])
			}
		})
	}
}

// dupDefine defines S a second time, then calls Install and Start.
func dupDefine(args []string) {
	multiexit.Define("S", func(context.Context, int) error { return nil })
	say("install error: %v", multiexit.Install())
	_, err := multiexit.Start(exec.Command("true"))
	say("start error: %v", err)
	os.Exit(0)
}

func TestDefineTwiceIsReported(t *testing.T) {
	p := start(t, dupDefine, nil)
	trace, _ := p.end()
	want := `Define("S") at fork_child_linux_test.go:`
	if len(trace) != 2 || !strings.Contains(trace[0], want) || !strings.Contains(trace[0], "name already defined at workers_test.go:") || !strings.Contains(trace[1], want) {
		t.Errorf("Install and Start must report the duplicate with both places: %q", trace)
	}
}

// sharedChan's argument cannot be encoded.
var sharedChan = multiexit.Define("chan", func(ctx context.Context, arg chan int) error { return nil })

// spoolDir is a shared hook as the README's quick start defines one.
var spoolDir = multiexit.Define("remove-spool", func(ctx context.Context, dir string) error {
	say("%s remove-spool %+q", role(), dir)
	return nil
})

// hiddenConf's argument has an unexported field.
type hiddenConf struct {
	Dir   string
	owner int
}

var sharedHidden = multiexit.Define("conf", func(ctx context.Context, c hiddenConf) error { return nil })

// badArg registers a shared hook whose argument does not encode as JSON
// ("chan"), or would not arrive unchanged ("latin1": a path that is not
// UTF-8; "hidden": an unexported field), then starts a worker; the hook
// runs here all the same.
func badArg(args []string) {
	mustInstall()
	if role() != "main" {
		return // a worker should never start
	}
	switch args[0] {
	case "chan":
		sharedChan.Register(make(chan int))
	case "latin1":
		spoolDir.Register("/var/spool/caf\xe9")
	case "hidden":
		sharedHidden.Register(hiddenConf{Dir: "/srv", owner: 1000})
	}
	_, err := multiexit.Start(multiexit.Command("w"))
	say("start error: %v", err)
	multiexit.Exit(0)
}

// A shared hook's argument reaches workers unchanged, or Start refuses to
// start them, naming the hook and what would not arrive; the hook still
// runs in this process, with its argument.
func TestSharedArgumentArrivesUnchangedOrIsRefused(t *testing.T) {
	for _, tc := range []struct{ arg, want, hook string }{
		{"chan", `start error: multiexit: shared hook "chan": argument does not encode as JSON: json: unsupported type: chan int`, ""},
		{"latin1", `start error: multiexit: shared hook "remove-spool": its argument would not reach workers unchanged: the argument is not valid UTF-8 (byte 14 of "/var/spool/caf\xe9"), and JSON carries text: it would arrive as "/var/spool/caf\ufffd"`,
			`main remove-spool "/var/spool/caf\xe9"`},
		{"hidden", `start error: multiexit: shared hook "conf": its argument would not reach workers unchanged: the argument's field owner is unexported: JSON leaves it out, so it would arrive as zero`, ""},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			p := start(t, badArg, []string{tc.arg})
			trace, how := p.end()
			want := []string{tc.want}
			if tc.hook != "" {
				want = append(want, tc.hook)
			}
			if diff := cmp.Diff(want, trace); diff != "" || how != exitCode(0) {
				t.Errorf("ended with %s; trace (-want +got):\n%s\nstderr:\n%s", how, diff, p.Stderr.String())
			}
		})
	}
}

// pdeathsig reads the parent-death signal. The kernel keeps it per thread
// and clears it in every new thread, so it is read on the main thread,
// where the worker was exec'd: TestMain runs on it (see lockMain).
func pdeathsig() int {
	var sig int32
	if err := unix.Prctl(unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&sig)), 0, 0, 0); err != nil {
		return -1
	}
	return int(sig)
}

// lockMain keeps the main goroutine, which runs TestMain and so every
// scenario, on the main thread.
func init() { runtime.LockOSThread() }

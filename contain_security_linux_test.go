package multiexit_test

// The containment against a less privileged descendant and another local
// user (docs/containment.md, "Security"): each test has the attacker's move made by a
// real process, most of them as user nobody.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/multiexit/multiexit"
	"github.com/multiexit/multiexit/internal/cgroupfs"
	"github.com/multiexit/multiexit/internal/proctest"
)

func init() {
	scenario(changingChain, listenFDs, stubbornTree, pid1Killed, leftInGroup, twoLevels)
}

// pidChain is a descendant that keeps changing its PID: it says "ready
// chain PGID", then, every 200 µs, forks its successor and exits. It stays
// in its process group and keeps its environment (the tree's tag). It
// holds neither standard output nor standard error: the test's reading of
// them does not wait for it.
const pidChain = `$| = 1; print "ready chain ", getpgrp(), "\n"; open STDOUT, ">/dev/null"; open STDERR, ">/dev/null"; while (1) { select(undef, undef, undef, 0.0002); fork and exit }`

// changingChain: main, with hook H1, starts an external child that runs
// pidChain in the background and sleeps; args[0] "exit": the child exits
// at once instead.
func changingChain(args []string) {
	mustInstall(multiexit.WithGrace(time.Second))
	multiexit.Register(hook("H1"))
	script := `perl -e "$0" & exec sleep 1000`
	if len(args) > 0 && args[0] == "exit" {
		script = `perl -e "$0" &`
	}
	ext := exec.Command("sh", "-c", script, pidChain)
	ext.Stdout = os.Stdout
	mustStart(ext)
	say("ready main")
	select {}
}

// Subreaper layer (issue 23.2): a descendant that keeps changing its PID —
// it forks its successor and exits, every 200 µs, same process group, tag
// untouched — does not outlive the stop: the sweep repeats until a scan
// finds nothing of the entry, and waits for the children that are exiting
// (their successors reparent after the scan that saw them). On the cgroup
// layer cgroup.kill takes it. Its child either still runs when the stop
// comes, or has exited (the chain then lives on as the entry's orphans).
func TestChangingPIDChainDoesNotOutliveTheStop(t *testing.T) {
	if _, err := exec.LookPath("perl"); err != nil {
		t.Skip("no perl")
	}
	for _, layer := range layers(t) {
		if layer == "process-group" {
			continue // once its child has exited, it is out of that layer's reach (see docs/containment.md)
		}
		for _, mode := range []string{"child runs", "child exited"} {
			t.Run(layer+", "+mode, func(t *testing.T) {
				for range 10 {
					var args []string
					if mode == "child exited" {
						args = []string{"exit"}
					}
					p := start(t, changingChain, args, multiexit.ContainmentVar+"="+layer)
					pgid := proctest.LastPID(p.WaitAll("ready main", "ready chain")["ready chain"])
					p.Signal(syscall.SIGTERM)
					trace, how := p.end()
					left := proctest.Survivors(p.Tag)
					killGroup(pgid, p.Tag)
					if len(left) > 0 || how != diedOf(syscall.SIGTERM) || len(trace) != 1 || trace[0] != "H1" {
						t.Fatalf("ended with %s, trace %q, left %v; stderr:\n%s", how, trace, left, p.Stderr.String())
					}
				}
			})
		}
	}
}

// killGroup kills process group pgid until no process tagged tag is left:
// a process of a group cannot fork out of a signal sent to the group.
func killGroup(pgid int, tag string) {
	for range 100 {
		if len(proctest.Survivors(tag)) == 0 {
			return
		}
		syscall.Kill(-pgid, syscall.SIGKILL)
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "killGroup: processes tagged %s are left: %v\n", tag, strings.TrimSpace(fmt.Sprint(proctest.Survivors(tag))))
}

// asNobody is the prefix of a command run as user nobody, with no groups.
var asNobody = []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}

// needNobody skips t unless this process is root and has setpriv.
func needNobody(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root, to run a process as user nobody")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv (util-linux)")
	}
}

// fdProbe says whether descriptor 3 is open in the shell that runs it.
const fdProbe = `if { true >&3; } 2>/dev/null; then echo "child fd 3 open"; else echo "child fd 3 closed"; fi; echo "child LISTEN_FDS=${LISTEN_FDS-unset}"`

// listenFDs: main was given a listening socket as descriptor 3, with
// LISTEN_FDS=1 and LISTEN_PID its own PID (socket activation); it starts,
// as user nobody, a shell that says whether descriptor 3 is open in it,
// then says whether it is still open in itself, and exits.
func listenFDs(args []string) {
	mustInstall()
	probe := exec.Command(asNobody[0], append(asNobody[1:], "sh", "-c", fdProbe)...)
	probe.Stdout, probe.Stderr = os.Stdout, os.Stderr
	if err := mustStart(probe)[0].Wait(); err != nil {
		say("probe: %v", err)
	}
	_, err := unix.FcntlInt(3, unix.F_GETFD, 0)
	say("main fd 3 open: %v", err == nil)
	multiexit.Exit(0)
}

// Socket activation (issue 23.3): the listening sockets passed to this
// process (descriptors 3.., LISTEN_FDS, LISTEN_PID this process) are not
// inherited by what Start starts — here a child that dropped its
// privileges, which could otherwise accept the service's clients. They stay
// open in the process itself.
func TestListenFDsAreNotInherited(t *testing.T) {
	needNobody(t)
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "service.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := startWith(t, func(cmd *exec.Cmd) {
		// As systemd does: LISTEN_PID is the service's own PID.
		cmd.Args = append([]string{"sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"`, cmd.Path}, cmd.Args[1:]...)
		cmd.Path, _ = exec.LookPath("sh")
		cmd.ExtraFiles = []*os.File{f}
	}, listenFDs, nil)
	p.check([]string{"child fd 3 closed", "child LISTEN_FDS=unset", "main fd 3 open: true"}, exitCode(0))
}

// Another local user (issue 23.4) cannot hold the lock of a tree's cgroup:
// a tree whose owner and guardian were SIGKILLed is removed, with its
// escapees, by the next Start, even with user nobody trying to hold the
// lock (flock(1) on the directory) before it.
func TestAnotherUserCannotHoldTheTreeLock(t *testing.T) {
	needNobody(t)
	if !cgroupWritable() {
		t.Skip("needs a writable cgroup v2 (the tree's cgroup)")
	}
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("no flock (util-linux)")
	}
	if rerunInPrivatePIDNamespace(t) {
		return
	}
	p := start(t, escape, nil)
	p.WaitAll(escapeReady...)
	pid := p.Cmd.Process.Pid
	root := treeCgroupOf(t, pid)
	g := guardianOf(t, pid)
	syscall.Kill(g, syscall.SIGKILL)
	proctest.WaitExited(g)

	// It waits for the lock (flock without --nonblock), to take it as
	// soon as the tree's owner is gone.
	attacker := exec.Command(asNobody[0], append(asNobody[1:], "flock", root, "-c", "echo locked; exec sleep 1000")...)
	attacker.Env = append(os.Environ(), proctest.Env(p.Tag))
	out, err := attacker.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr proctest.Buffer
	attacker.Stderr = &stderr
	attacker.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := attacker.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		syscall.Kill(-attacker.Process.Pid, syscall.SIGKILL) // flock and what it runs
		attacker.Wait()
	}()
	p.Signal(syscall.SIGKILL)
	if _, err := p.Cmd.Process.Wait(); err != nil { // reaped: its PID names no process
		t.Fatal(err)
	}
	// A guard, not an assertion: the attacker says "locked" or exits.
	guard := time.AfterFunc(time.Minute, func() { syscall.Kill(-attacker.Process.Pid, syscall.SIGKILL) })
	line, _ := bufio.NewReader(out).ReadString('\n')
	guard.Stop()
	if line == "locked\n" {
		t.Errorf("user nobody holds the lock of %s", root)
	} else {
		attacker.Wait()
		t.Logf("user nobody could not take the lock: %s", strings.TrimSpace(stderr.String()))
	}
	b := start(t, bystander, nil)
	b.check([]string{"started on cgroup"}, exitCode(0))
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("the next Start left the dead tree %s (%v); its processes: %v", root, err, proctest.Survivors(p.Tag))
	}
	// proctest's cleanup proves that its escapees are gone.
}

// treeCgroupOf finds the tree cgroup of process pid, of this PID
// namespace.
func treeCgroupOf(t *testing.T, pid int) string {
	t.Helper()
	l, err := os.Readlink("/proc/self/ns/pid") // pid:[4026531836]
	if err != nil {
		t.Fatal(err)
	}
	ns := strings.TrimSuffix(strings.TrimPrefix(l, "pid:["), "]")
	for _, mnt := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		m, _ := filepath.Glob(fmt.Sprintf("%s/*/multiexit.%s.%d.*", mnt, ns, pid))
		m2, _ := filepath.Glob(fmt.Sprintf("%s/multiexit.%s.%d.*", mnt, ns, pid))
		if m = append(m, m2...); len(m) > 0 {
			return m[0]
		}
	}
	t.Fatalf("the tree cgroup of process %d was not found", pid)
	return ""
}

// stubbornTree: main, with a grace period of 200 ms and a deadline of an
// hour, starts an external child that ignores SIGTERM and has an escapee
// (setsid) that ignores it too; each says its PID.
func stubbornTree(args []string) {
	mustInstall(multiexit.WithGrace(200*time.Millisecond), multiexit.WithTimeout(time.Hour))
	ext := exec.Command("sh", "-c", `trap "" TERM; setsid sh -c 'trap "" TERM; echo ready esc $$; exec sleep 1000 >/dev/null' & echo ready ext $$; exec sleep 1000 >/dev/null`)
	ext.Stdout = os.Stdout
	mustStart(ext)
	say("ready main %d", os.Getpid())
	select {}
}

// After the parent's SIGKILL (issue 22.4), the guardian gives an external
// child and the rest of the tree the grace period (WithGrace, the CLI's
// -grace), then SIGKILL — not the shutdown deadline, which is what a
// worker gets to run its hooks. Here the deadline is an hour: a guardian
// that waited for it would keep the SIGTERM-ignoring tree for an hour.
func TestGuardianGivesTheGracePeriodAfterSIGKILL(t *testing.T) {
	if !cgroupWritable() {
		t.Skip("needs a writable cgroup v2 (the guardian's layer)")
	}
	p := start(t, stubbornTree, nil)
	fds := p.Watch("ready main", "ready ext", "ready esc")
	p.Signal(syscall.SIGKILL)
	for _, who := range []string{"ready ext", "ready esc"} {
		// A guard, far above the grace period and far below the deadline.
		if !proctest.Exited(fds[who], time.Minute) {
			t.Errorf("%s: still running a minute after the parent's SIGKILL (grace 200ms, deadline 1h)", who)
		}
	}
}

// pid1Killed: as PID 1 of its PID namespace, main starts a child and a
// worker, which starts one of its own, says "ready main" and waits for its
// SIGKILL.
func pid1Killed(args []string) {
	mustInstall()
	if multiexit.IsChild() {
		mustStart(exec.Command("sleep", "1000"))
		say("ready w")
		select {}
	}
	mustStart(exec.Command("sleep", "1000"), multiexit.Command("w"))
	say("ready main")
	select {}
}

// As PID 1 of a PID namespace (a container's init), a SIGKILL of the
// process leaves no cgroup directory (issue 22.5): the namespace dies with
// it, the guardian too, so neither it nor its workers make a tree cgroup.
func TestPID1SIGKILLedLeavesNoCgroup(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare")
	}
	if os.Getuid() != 0 {
		t.Skip("needs root for a PID namespace")
	}
	if !cgroupWritable() {
		t.Skip("needs a writable cgroup v2: without it no cgroup is made anyway")
	}
	p := startWith(t, func(cmd *exec.Cmd) {
		cmd.Args = append([]string{"unshare", "--pid", "--fork", "--mount-proc", cmd.Path}, cmd.Args[1:]...)
		cmd.Path, _ = exec.LookPath("unshare")
	}, pid1Killed, nil)
	p.WaitAll("ready main", "ready w")
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p.Cmd.Process.Pid, p.Cmd.Process.Pid))
	var init int
	fmt.Sscan(string(b), &init)
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", init))
	if init == 0 || err != nil {
		t.Fatalf("the namespace's PID 1 (%q): %v", b, err)
	}
	ns = strings.TrimSuffix(strings.TrimPrefix(ns, "pid:["), "]")
	syscall.Kill(init, syscall.SIGKILL)
	p.end()
	for _, mnt := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		left, _ := filepath.Glob(fmt.Sprintf("%s/*multiexit.%s.*", mnt, ns))
		left2, _ := filepath.Glob(fmt.Sprintf("%s/*/multiexit.%s.*", mnt, ns))
		if left = append(left, left2...); len(left) > 0 {
			t.Errorf("left: %v", left)
			for _, d := range left {
				os.WriteFile(d+"/cgroup.kill", []byte("1"), 0)
				cgroupfs.RemoveTree(d)
			}
		}
	}
}

// leftInGroup: main, with hook H1, starts an external child that leaves a
// process in its process group (args[0] "ignores": one that ignores
// SIGTERM) and exits; once it has, main says "ready main". The process
// left says "ready left PID" itself, after its trap: a SIGTERM before the
// trap would kill it, and the test would not see whether the stop kills
// one that ignores SIGTERM.
func leftInGroup(args []string) {
	mustInstall(multiexit.WithGrace(500 * time.Millisecond))
	multiexit.Register(hook("H1"))
	trap := ""
	if len(args) > 0 && args[0] == "ignores" {
		trap = `trap "" TERM; `
	}
	ext := exec.Command("sh", "-c", `sh -c '`+trap+`echo ready left $$; exec sleep 1000 >/dev/null' &`)
	ext.Stdout = os.Stdout
	mustStart(ext)[0].Wait()
	say("ready main %d", os.Getpid())
	select {}
}

// What a child left in its process group when it exited before its entry
// was stopped is stopped with the entry (issue 17.8), on every layer: on
// the process-group layer through pidfds taken while the child was an
// unreaped zombie (its group ID could be reused once it is reaped).
func TestWhatAnExitedChildLeftInItsGroupIsStopped(t *testing.T) {
	for _, layer := range layers(t) {
		for _, kind := range []string{"stops", "ignores"} {
			t.Run(layer+", member "+kind+" SIGTERM", func(t *testing.T) {
				p := start(t, leftInGroup, []string{kind}, multiexit.ContainmentVar+"="+layer)
				fds := p.Watch("ready left", "ready main")
				p.Signal(syscall.SIGTERM)
				p.check([]string{"H1"}, diedOf(syscall.SIGTERM))
				if !proctest.Exited(fds["ready left"], 0) {
					t.Errorf("what the child left in its group still runs after the stop")
				}
			})
		}
	}
}

// twoLevels: main, with hook H1, starts worker w1, which starts worker w2,
// which starts an external child with an escapee (setsid); each says its
// PID.
func twoLevels(args []string) {
	mustInstall(multiexit.WithGrace(500 * time.Millisecond))
	switch role() {
	case "main":
		multiexit.Register(hook("H1"))
		mustStart(multiexit.Command("w1"))
	case "w1":
		mustStart(multiexit.Command("w2"))
	case "w2":
		ext := exec.Command("sh", "-c", `setsid sh -c 'echo ready esc $$; exec sleep 1000 >/dev/null 2>&1 </dev/null' & exec sleep 1000 >/dev/null`)
		ext.Stdout = os.Stdout
		mustStart(ext)
	}
	sayReady(role())
	select {}
}

// The escapee of two SIGKILLed levels (issue 17.8): w2, then w1, are
// SIGKILLed; the escapee reparents to w1, then to main, tagged by w2's tree,
// whose tag names w1's, whose tag names main's entry: it stops with that
// entry.
func TestEscapeeOfTwoKilledLevelsStopsWithItsEntry(t *testing.T) {
	for _, layer := range layers(t) {
		if layer == "process-group" {
			continue // escapees are out of its reach (see TestEscapeesAreContained)
		}
		t.Run(layer, func(t *testing.T) {
			p := start(t, twoLevels, nil, multiexit.ContainmentVar+"="+layer)
			fds := p.Watch("ready main", "ready w1", "ready w2", "ready esc")
			for _, w := range []string{"ready w2", "ready w1"} {
				if err := unix.PidfdSendSignal(fds[w], unix.SIGKILL, nil, 0); err != nil {
					t.Fatal(err)
				}
				proctest.Exited(fds[w], -1)
			}
			p.Signal(syscall.SIGTERM)
			p.check([]string{"H1"}, diedOf(syscall.SIGTERM))
			if !proctest.Exited(fds["ready esc"], 0) {
				t.Errorf("the escapee of the two SIGKILLed workers outlived main")
			}
		})
	}
}

// A tree cgroup left by a PID namespace that died (a container whose init
// was SIGKILLed took the tree's owner and its guardian with it; the name
// carries that namespace's inode) is removed, with what is left in it, by
// the next Start of another namespace (issue 17.8).
func TestDeadNamespacesTreeIsRemoved(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare")
	}
	if os.Getuid() != 0 {
		t.Skip("needs root for a PID namespace")
	}
	if !cgroupWritable() {
		t.Skip("needs a writable cgroup v2 (the tree's cgroup)")
	}
	p := startWith(t, func(cmd *exec.Cmd) {
		// The namespace's init is a shell: main is not PID 1, so it
		// makes a tree cgroup, with a guardian.
		cmd.Args = append([]string{"unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", `"$0" "$@" & wait`, cmd.Path}, cmd.Args[1:]...)
		cmd.Path, _ = exec.LookPath("unshare")
	}, escape, nil)
	p.WaitAll(escapeReady...)
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p.Cmd.Process.Pid, p.Cmd.Process.Pid))
	var init int
	fmt.Sscan(string(b), &init)
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", init))
	if init == 0 || err != nil {
		t.Fatalf("the namespace's init (%q): %v", b, err)
	}
	ns = strings.TrimSuffix(strings.TrimPrefix(ns, "pid:["), "]")
	trees := func() []string {
		var all []string
		for _, mnt := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
			m, _ := filepath.Glob(fmt.Sprintf("%s/multiexit.%s.*", mnt, ns))
			m2, _ := filepath.Glob(fmt.Sprintf("%s/*/multiexit.%s.*", mnt, ns))
			all = append(append(all, m...), m2...)
		}
		return all
	}
	if len(trees()) == 0 {
		t.Fatal("the namespace made no tree cgroup: nothing to test")
	}
	syscall.Kill(init, syscall.SIGKILL) // the namespace dies, the guardian with it
	p.end()
	if len(trees()) == 0 {
		// Another multiexit of the suite (go test runs packages side by
		// side) started children meanwhile, and removed it: the behaviour
		// under test, though not by the bystander.
		t.Log("the dead namespace's tree was removed before the bystander started")
		return
	}
	by := start(t, bystander, nil)
	by.check([]string{"started on cgroup"}, exitCode(0))
	if left := trees(); len(left) > 0 {
		t.Errorf("the next Start left the dead namespace's tree %v", left)
		for _, d := range left {
			os.WriteFile(d+"/cgroup.kill", []byte("1"), 0)
			cgroupfs.RemoveTree(d)
		}
	}
}

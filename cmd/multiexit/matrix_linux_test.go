package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/multiexit/multiexit/internal/proctest"
	"golang.org/x/sys/unix"
)

// catchable is every signal a process can catch on Linux: 1 to 31 but
// SIGKILL and SIGSTOP, and the real-time signals 34 to 64 (32 and 33 are
// the C library's).
func catchable() []syscall.Signal {
	var out []syscall.Signal
	for sig := syscall.Signal(1); sig <= 64; sig++ {
		if sig != syscall.SIGKILL && sig != syscall.SIGSTOP && sig != 32 && sig != 33 {
			out = append(out, sig)
		}
	}
	return out
}

// inCOnly are the signals that the Go runtime keeps from os/signal, which
// multiexit forwards only when built with cgo (see callersig_cgo.go).
func inCOnly(sig syscall.Signal) bool {
	return sig == syscall.SIGURG || sig == syscall.SIGPROF || sig == 34
}

// TestSignalMatrix sends each signal a process can catch to multiexit, as
// a normal process and as PID 1 of a PID namespace (a container's init),
// with a COMMAND that reports each signal it gets. Each reaches COMMAND
// (SIGCHLD excepted: multiexit's own children's news), a fault signal
// that kill sent included; none ends or crashes multiexit, which then
// exits with COMMAND's status. SIGTERM and SIGINT would also have COMMAND
// killed after the grace period (an hour here: see TestSIGTERMIgnored).
func TestSignalMatrix(t *testing.T) {
	t.Parallel()
	py := python(t)
	cgo := withCgo(t)
	for _, mode := range []string{"process", "pid1"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			for _, sig := range catchable() {
				t.Run(signalName(sig), func(t *testing.T) {
					t.Parallel()
					if !cgo && inCOnly(sig) {
						t.Skip("multiexit was built without cgo: the Go runtime keeps this signal (see runtimeOwned)")
					}
					argv := mx().command(py, "-c", printSignals)
					if mode == "pid1" {
						argv = asPID1(t, argv)
					}
					p := startProgram(t, nil, argv[0], argv[1:]...)
					p.WaitFor("ready ")
					target := p.Cmd.Process.Pid
					if mode == "pid1" {
						target = init1(t, p)
					}
					want := sig
					if err := syscall.Kill(target, sig); err != nil {
						t.Fatal(err)
					}
					if sig == syscall.SIGCHLD {
						// Not forwarded: the next signal COMMAND gets is the
						// one sent after it. SIGWINCH has a higher number, so
						// a forwarded SIGCHLD would come first (pending
						// signals are taken lowest first, by multiexit's
						// runtime and by Python alike).
						want = syscall.SIGWINCH
						if err := syscall.Kill(target, want); err != nil {
							t.Fatal(err)
						}
					}
					if got := p.WaitFor("got "); got != fmt.Sprintf("got %d", want) {
						t.Errorf("COMMAND says %q after %s to multiexit, want \"got %d\"", got, signalName(sig), want)
					}
					p.say("exit 3")
					lines := p.Rest()
					p.check("exit 3")
					p.Quiet()
					if n := countPrefix(lines, "got "); n != 1 {
						t.Errorf("COMMAND got %d signals, want 1: %q", n, lines)
					}
				})
			}
		})
	}
}

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// A SIGSEGV that kill(2) did not send is not forwarded: multiexit crashes
// as a Go program does at a fault of its own. sigqueue(3)'s si_code
// (SI_QUEUE) stands here for the kernel's of a real fault: the Go runtime
// tells kill's signals (SI_USER) from the others by it. COMMAND, told by
// its parent-death signal, exits (the subreaper layer: no guardian to
// wait for).
func TestOwnFaultCrashes(t *testing.T) {
	t.Parallel()
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sigqueue below has the 64-bit siginfo_t layout")
	}
	py := python(t)
	p := start(t, []string{"MULTIEXIT_CONTAINMENT=subreaper"}, "-grace", "1h", "--", py, "-c", `import os, select, signal, sys
signal.signal(signal.SIGSEGV, lambda s, f: os.write(1, b"got SIGSEGV\n"))
signal.signal(signal.SIGTERM, lambda s, f: sys.exit(0))
`+waitInput+`os.write(1, b"ready %d\n" % os.getpid())
wait_input()`)
	fds := p.Watch("ready ")
	if err := sigqueue(p.Cmd.Process.Pid, syscall.SIGSEGV); err != nil {
		t.Fatal(err)
	}
	lines, how := p.End()
	if how != "exit 2" || !strings.Contains(p.Stderr.String(), "SIGSEGV") {
		t.Errorf("multiexit ended with %s, want a Go crash (exit 2) at SIGSEGV; stderr:\n%s", how, p.Stderr.String())
	}
	if countPrefix(lines, "got SIGSEGV") > 0 {
		t.Errorf("the SIGSEGV was forwarded: %q", lines)
	}
	if !proctest.Exited(fds["ready "], limit) {
		t.Errorf("COMMAND still runs %v after multiexit crashed", limit)
	}
}

// sigqueue sends sig to pid as sigqueue(3) does: si_code SI_QUEUE. The
// siginfo_t is laid out as on 64-bit platforms.
func sigqueue(pid int, sig syscall.Signal) error {
	var info struct {
		signo, errno, code int32
		_                  int32
		pid, uid           uint32
		_                  [104]byte
	}
	info.signo, info.code = int32(sig), -1 // SI_QUEUE
	info.pid, info.uid = uint32(unix.Getpid()), uint32(unix.Getuid())
	_, _, e := unix.Syscall(unix.SYS_RT_SIGQUEUEINFO, uintptr(pid), uintptr(sig), uintptr(unsafe.Pointer(&info)))
	if e != 0 {
		return e
	}
	return nil
}

// With its standard error a broken pipe (multiexit -v -- cmd 2>&1 | head
// -1), multiexit's own lines raise no SIGPIPE in it: multiexit would take
// one for a SIGPIPE sent to it and forward it to COMMAND, and each forward
// it logs would raise the next (see quietStderr).
func TestBrokenStderrRaisesNoSIGPIPE(t *testing.T) {
	t.Parallel()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	defer w.Close()
	// Descriptor 3 is the broken pipe; it becomes multiexit's standard
	// error, and its standard output stays the test's.
	cmd := exec.Command("sh", "-c", `exec 2>&3 3>&-; exec "$0" "$@"`, bin, "-v", "-grace", "1h", "--", python(t), "-c", printSignals)
	cmd.ExtraFiles = []*os.File{w}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	p := &prog{Proc: proctest.Start(t, cmd, proctest.Options{Limit: limit}), t: t, in: in}
	p.WaitFor("ready ")
	for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGUSR2} {
		p.Signal(sig)
		if got := p.WaitFor("got "); got != fmt.Sprintf("got %d", sig) {
			t.Errorf("COMMAND says %q, want got %d", got, sig)
		}
	}
	p.say("exit 0")
	lines := p.Rest()
	p.check("exit 0")
	if n := countPrefix(lines, fmt.Sprintf("got %d", syscall.SIGPIPE)); n > 0 {
		t.Errorf("COMMAND got %d SIGPIPEs of multiexit's own: %q", n, lines)
	}
}

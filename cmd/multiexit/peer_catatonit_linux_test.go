package main_test

// catatonit's documented behaviour (README.md and catatonit.c: it has no
// tests of its own), adapted: each runs against multiexit and against
// catatonit.

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/multiexit/multiexit/internal/proctest"
)

// catatonit forwards every signal sent to it, but for SIGCHLD, for the
// job-control SIGTSTP, SIGTTOU and SIGTTIN, which it ignores, and for the
// "kernel" signals SIGFPE, SIGILL, SIGSEGV, SIGBUS, SIGABRT, SIGTRAP and
// SIGSYS, which it leaves at their default, so that one sent by kill ends
// it. multiexit forwards those too, on purpose: a fault signal that kill
// sent is a request for COMMAND (systemd's watchdog sends SIGABRT), and
// job control is COMMAND's (its own faults still crash it: see
// TestOwnFaultCrashes).
func TestCatatonitForwardsSignals(t *testing.T) {
	t.Parallel()
	py := python(t)
	cgo := withCgo(t)
	for sig := syscall.Signal(1); sig < 32; sig++ {
		if sig == syscall.SIGKILL || sig == syscall.SIGSTOP || sig == syscall.SIGCHLD {
			continue
		}
		t.Run(signalName(sig), func(t *testing.T) {
			t.Parallel()
			each(t, []tool{mx(), catatonit()}, func(t *testing.T, tl tool) {
				if tl.isMultiexit() && !cgo && inCOnly(sig) {
					t.Skip("multiexit was built without cgo: the Go runtime keeps this signal")
				}
				p := startTool(t, tl, nil, py, "-c", printSignals)
				command := proctest.LastPID(p.WaitFor("ready "))
				p.Signal(sig)
				switch {
				case !tl.isMultiexit() && catatonitKernelSignal(sig):
					// ulimit: catatonit's core dump is none of the test's.
					// COMMAND, orphaned, holds standard error: it is
					// killed once catatonit is dead, before the check
					// waits for the end of that stream (which used to
					// wait out proctest's 30s limit, and miss it when
					// the machine was loaded).
					if fd, err := unix.PidfdOpen(p.Cmd.Process.Pid, 0); err == nil {
						proctest.Exited(fd, limit)
						unix.Close(fd)
					}
					syscall.Kill(command, syscall.SIGKILL)
					p.check(deathStatus(sig))
					killLeftovers(p)
					return
				case !tl.isMultiexit() && (sig == syscall.SIGTSTP || sig == syscall.SIGTTOU || sig == syscall.SIGTTIN):
					// Ignored: the next signal COMMAND gets is the one sent
					// after it (a higher number: it would come second).
					p.Signal(syscall.SIGWINCH)
					if got := p.WaitFor("got "); got != fmt.Sprintf("got %d", syscall.SIGWINCH) {
						t.Errorf("COMMAND says %q, want only the SIGWINCH sent after", got)
					}
				default:
					if got := p.WaitFor("got "); got != fmt.Sprintf("got %d", sig) {
						t.Errorf("COMMAND says %q, want got %d", got, sig)
					}
				}
				p.say("exit 0")
				p.Rest()
				p.check("exit 0")
			})
		})
	}
}

func catatonitKernelSignal(sig syscall.Signal) bool {
	switch sig {
	case syscall.SIGFPE, syscall.SIGILL, syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGABRT, syscall.SIGTRAP, syscall.SIGSYS:
		return true
	}
	return false
}

// catatonit moves to "/" once COMMAND runs (a podman unmount it kept busy);
// so does multiexit, before; COMMAND keeps the directory it was started
// in. (See TestDumbInitWorkingDirectory.)
func TestCatatonitWorkingDirectory(t *testing.T) {
	t.Parallel()
	each(t, []tool{mx(), catatonit()}, func(t *testing.T, tl tool) {
		workingDirectories(t, tl)
	})
}

// catatonit closes every descriptor above 2 it inherited, once COMMAND
// has them. multiexit keeps them, on purpose: COMMAND has them either way,
// and multiexit returns only when COMMAND's whole tree is gone, so a
// reader waiting for the end of such a pipe would not learn it any sooner
// (and a systemd unit's descriptors stay with its main process).
func TestCatatonitDescriptors(t *testing.T) {
	t.Parallel()
	each(t, []tool{mx(), catatonit()}, func(t *testing.T, tl tool) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var st syscall.Stat_t
		if err := syscall.Fstat(int(w.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		pipe := fmt.Sprintf("pipe:[%d]", st.Ino)
		argv := tl.command("sh", "-c", `echo "command $(readlink /proc/$$/fd/3)"; exec 3>&-; echo closed; read _`)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.ExtraFiles = []*os.File{w}
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { in.Close() })
		p := &prog{Proc: proctest.Start(t, cmd, proctest.Options{Limit: limit}), t: t, in: in}
		w.Close()
		if got := p.WaitFor("command "); got != "command "+pipe {
			t.Errorf("COMMAND's descriptor 3 is %q, want %s", got, pipe)
		}
		p.WaitFor("closed")
		if tl.isMultiexit() {
			if got, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/3", p.Cmd.Process.Pid)); got != pipe {
				t.Errorf("multiexit's descriptor 3 is %q, want %s, kept", got, pipe)
			}
		} else {
			// The end of the pipe comes once catatonit closed its copy.
			r.SetReadDeadline(time.Now().Add(limit))
			if _, err := io.ReadAll(r); err != nil {
				t.Errorf("catatonit kept descriptor 3: %v", err)
			}
		}
		p.say("done")
		p.check("exit 0")
	})
}

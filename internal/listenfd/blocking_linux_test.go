package listenfd_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/multiexit/multiexit/internal/listenfd"
)

// TestHandoffKeepsParentFlags (issue 19's blocking-mode trap): handing a
// socket down changes nothing of the parent's descriptor: not to a Go
// worker that exits before it adopts it, not through the shim to a
// program that only looks at it. With package net's own route (a
// listener's File in ExtraFiles) the same hand-off turns the parent's
// listener blocking under its poller: that is the trap Pass avoids.
func TestHandoffKeepsParentFlags(t *testing.T) {
	bin := cProgram(t)
	s := openT(t, "web", "tcp", "127.0.0.1:0")
	f := listenfd.FileOf(s)
	fl0, fd0 := flags(t, f)
	if fl0&unix.O_NONBLOCK != 0 || fd0&unix.FD_CLOEXEC == 0 {
		t.Fatalf("Open: flags %#x, descriptor flags %#x: want blocking and close-on-exec", fl0, fd0)
	}
	p := startPassed(t, scenarioCmd("exitAtOnce"), []*listenfd.Socket{s}, listenfd.GoWorker)
	lines, how := p.End()
	p.Ended(how, "exit 0")
	if fl, fd := flags(t, f); fl != fl0 || fd != fd0 {
		t.Errorf("after a Go worker that did not adopt it (%q): flags %#x, %#x; before %#x, %#x", lines, fl, fd, fl0, fd0)
	}
	p = startPassed(t, exec.Command(bin, "probe"), []*listenfd.Socket{s}, listenfd.AnyProgram)
	if got, want := p.WaitFor("ready"), fmt.Sprintf("ready pid=%d names=web fd3=socket,listening,blocking", p.Cmd.Process.Pid); got != want {
		t.Errorf("the C child saw %q, want %q", got, want)
	}
	_, how = p.End()
	p.Ended(how, "exit 0")
	if fl, fd := flags(t, f); fl != fl0 || fd != fd0 {
		t.Errorf("after the shim and a C child: flags %#x, %#x; before %#x, %#x", fl, fd, fl0, fd0)
	}

	// Package net's route, for comparison.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	nonblock := func() bool {
		raw, _ := l.(*net.TCPListener).SyscallConn()
		var fl int
		raw.Control(func(fd uintptr) { fl, _ = unix.FcntlInt(fd, unix.F_GETFL, 0) })
		return fl&unix.O_NONBLOCK != 0
	}
	if !nonblock() {
		t.Fatal("a net.Listener is blocking from the start")
	}
	lf, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/true")
	cmd.ExtraFiles = []*os.File{lf}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	if nonblock() {
		t.Log("package net's File in ExtraFiles no longer turns the parent's listener blocking (Go changed)")
	} else {
		t.Log("as expected, package net's File in ExtraFiles turned the parent's listener blocking")
	}
}

// TestMixedPoolSharesNonblock shows what a Go worker does to the shared
// socket (documented in the package doc): package net's FileListener sets
// O_NONBLOCK on the open file description that the parent and every
// worker share, so the parent's descriptor turns non-blocking too, and a
// C program that then accepts in blocking mode gets EAGAIN when no
// connection waits. A pool that mixes the two on one socket is therefore
// not supported.
func TestMixedPoolSharesNonblock(t *testing.T) {
	bin := cProgram(t)
	s := openT(t, "web", "tcp", "127.0.0.1:0")
	f := listenfd.FileOf(s)
	fl0, _ := flags(t, f)
	p := startPassed(t, scenarioCmd("goServe", "web"), []*listenfd.Socket{s}, listenfd.GoWorker)
	p.WaitFor("ready")
	greet(t, s)
	_, how := p.End()
	p.Ended(how, "exit 0")
	fl, _ := flags(t, f)
	if fl != fl0|unix.O_NONBLOCK {
		t.Errorf("after a Go worker's net.FileListener the parent's flags are %#x (were %#x): want O_NONBLOCK added by the worker", fl, fl0)
	}
	p = startPassed(t, exec.Command(bin, "probe"), []*listenfd.Socket{s}, listenfd.AnyProgram)
	if got, want := p.WaitFor("ready"), fmt.Sprintf("ready pid=%d names=web fd3=socket,listening,nonblock", p.Cmd.Process.Pid); got != want {
		t.Errorf("the C child saw %q, want %q", got, want)
	}
	if got := p.WaitFor("accept"); got != "accept: EAGAIN" {
		t.Errorf("a blocking accept in the C child: %q, want EAGAIN", got)
	}
	_, how = p.End()
	p.Ended(how, "exit 0")
}

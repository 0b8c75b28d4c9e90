package proctest

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Watch is PIDs that opens a pidfd for each process at once, as its line
// is read, and returns them; t's cleanup closes them. Wait notes which of
// them still run when the process has exited: see Gone.
func (p *Proc) Watch(prefixes ...string) map[string]int {
	p.t.Helper()
	fds := map[string]int{}
	if p.fds == nil {
		p.fds = map[string]int{}
	}
	if p.pids == nil {
		p.pids = map[string]int{}
	}
	p.each(prefixes, func(pre, line string) {
		pid := p.pid(line)
		fd := Pidfd(p.t, pid)
		fds[pre], p.fds[pre], p.pids[pre] = fd, fd, pid
	})
	return fds
}

func exitedNow(fd int) bool { return Exited(fd, 0) }

// Pidfd opens a pidfd for pid (no PID-reuse race from then on), which t's
// cleanup closes; it fails t if pid is gone.
func Pidfd(t testing.TB, pid int) int {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("pidfd of pid %d: %v", pid, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// Exited reports whether the process of pidfd fd has exited within d (for
// ever if d < 0): its pidfd becomes readable then.
func Exited(fd int, d time.Duration) bool {
	ms := int(d.Milliseconds())
	if d < 0 {
		ms = -1
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0
	}
}

// WaitExited waits, without reaping it, until the process pid has exited
// (or is gone already). A scenario process may call it: it needs no test.
func WaitExited(pid int) {
	if fd, err := unix.PidfdOpen(pid, 0); err == nil {
		Exited(fd, -1)
		unix.Close(fd)
	}
}

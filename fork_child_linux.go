package multiexit

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// setDeathSignal asks the kernel to send SIGTERM to the child when this
// process dies, unless the caller chose a signal.
func setDeathSignal(a *syscall.SysProcAttr) {
	if a.Pdeathsig == 0 {
		a.Pdeathsig = syscall.SIGTERM
	}
}

// groupPinned: on Linux a stopped child's group is killed while the child
// is an unreaped zombie (waitExited), or not at all: if waitExited failed
// (SIGCHLD ignored, or another reaper took the child), the group ID may
// already belong to someone else.
const groupPinned = true

// waitExited waits until pid has exited without reaping it, and reports
// whether it could. It parks the goroutine on the runtime's poller through
// a pidfd, which becomes readable when the process exits: a blocking
// waitid would hold an OS thread per child for the child's whole life.
// Kernels without pidfd_open and PIDFD_NONBLOCK (before 5.10) fall back to
// the blocking wait.
func waitExited(pid int) bool {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return waitExitedBlocking(pid)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return waitExitedBlocking(pid)
	}
	exited := false
	err = rc.Read(func(fd uintptr) bool {
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOWAIT, nil)
			switch err {
			case unix.EINTR:
				continue
			case unix.EAGAIN: // still running: park until the pidfd is readable
				return false
			}
			exited = err == nil
			return true
		}
	})
	if err != nil {
		return waitExitedBlocking(pid)
	}
	return exited
}

func waitExitedBlocking(pid int) bool {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err == nil
		}
	}
}

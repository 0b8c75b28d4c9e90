package osproc

// Starting processes on Linux: from one locked OS thread (Pdeathsig), and
// from the running binary even if its file was replaced; waiting for a
// child's exit without reaping it.

import (
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The kernel sends Pdeathsig when the thread that forked the child exits,
// not the process (https://go.dev/issue/27505), so children are forked
// from one locked OS thread that never exits.
var forkThread struct {
	once sync.Once
	jobs chan func()
}

// StartCmd starts cmd (exec.Cmd.Start), on Linux from one locked OS thread
// that never exits, so that the child's Pdeathsig fires when this process
// dies, not when a thread does.
func StartCmd(cmd *exec.Cmd) error {
	forkThread.once.Do(func() {
		forkThread.jobs = make(chan func())
		go forkLoop(forkThread.jobs)
	})
	done := make(chan error, 1)
	forkThread.jobs <- func() { done <- cmd.Start() }
	return <-done
}

func forkLoop(jobs <-chan func()) {
	runtime.LockOSThread() // never unlocked: the thread lives as long as the process
	for f := range jobs {
		f()
	}
}

// SelfExecutable is the file this process runs, as the kernel holds it
// (/proc/self/exe): still there if the binary was replaced or deleted
// since it started. Without /proc it is os.Executable.
func SelfExecutable() (string, error) {
	if !procSelfExe() {
		return os.Executable()
	}
	return "/proc/self/exe", nil
}

// procSelfExe reports whether /proc/self/exe exists, asked once: every
// worker's Command asks.
var procSelfExe = sync.OnceValue(func() bool {
	_, err := os.Lstat("/proc/self/exe")
	return err == nil
})

// setDeathSignal asks the kernel to send SIGTERM to the child when this
// process dies, unless the caller chose a signal.
func setDeathSignal(a *syscall.SysProcAttr) {
	if a.Pdeathsig == 0 {
		a.Pdeathsig = syscall.SIGTERM
	}
}

// GroupPinned: on Linux a stopped child's group is killed while the child
// is an unreaped zombie (WaitExited), or not at all: if WaitExited failed
// (SIGCHLD ignored, or another reaper took the child), the group ID may
// already belong to someone else.
const GroupPinned = true

// WaitExited waits until pid has exited without reaping it, and reports
// whether it could. It parks the goroutine on the runtime's poller through
// a pidfd, which becomes readable when the process exits: a blocking
// waitid would hold an OS thread per child for the child's whole life.
// Kernels without pidfd_open and PIDFD_NONBLOCK (before 5.10) fall back to
// the blocking wait.
func WaitExited(pid int) bool {
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

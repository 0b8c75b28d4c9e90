package multiexit

import (
	"os"
	"os/exec"
	"runtime"
	"sync"
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

// deathPipe makes the pipe whose closing tells a worker that its parent
// died. Neither end is put on the runtime's poller, as os.Pipe's are: the
// parent only writes two short lines on its end (its deadline at Start, the
// worker's budget at the stop: far below the pipe's buffer, so the write
// never blocks) and closes it, and the worker's os.NewFile sees a blocking
// descriptor either way.
func deathPipe() (r, w *os.File, err error) {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		return nil, nil, os.NewSyscallError("pipe2", err)
	}
	return os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1"), nil
}

// The kernel sends Pdeathsig when the thread that forked the child exits,
// not the process (https://go.dev/issue/27505), so children are forked
// from one locked OS thread that never exits.
var forkThread struct {
	once sync.Once
	jobs chan func()
}

func startCmd(cmd *exec.Cmd) error {
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

// signalOnHangup asks the kernel to send this process SIGTERM when the
// last writer of the pipe fd closes it: O_ASYNC, with F_SETSIG naming the
// signal instead of SIGIO. A worker so learns of its parent's death (the
// parent holds the only write end of the control channel; the kernel closes
// it however the parent dies) with no goroutine, OS thread or poller entry
// waiting. Unlike Pdeathsig, which the kernel also sends, it survives the
// worker changing its credentials (setuid), which clears Pdeathsig: the
// owner recorded here is allowed to signal the process. It reports false if
// the kernel refused, and whether the write end is already closed.
func signalOnHangup(fd int) (armed, hungUp bool) {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETOWN, os.Getpid()); err != nil {
		return false, false
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETSIG, int(unix.SIGTERM)); err != nil {
		return false, false
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return false, false
	}
	// Non-blocking too: the shutdown reads what the parent said (see
	// workerControl.readControl) without waiting.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags|unix.O_ASYNC|unix.O_NONBLOCK); err != nil {
		return false, false
	}
	// A parent that died before O_ASYNC was set sent no signal.
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			continue
		}
		return true, err == nil && n > 0 && fds[0].Revents&unix.POLLHUP != 0
	}
}

// selfExecutable is the file this process runs, as the kernel holds it:
// still there if the binary was replaced or deleted since it started.
func selfExecutable() (string, error) {
	const self = "/proc/self/exe"
	if _, err := os.Lstat(self); err != nil {
		return os.Executable()
	}
	return self, nil
}

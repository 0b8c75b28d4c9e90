package ctl

// The control channel on Linux: a pipe off the runtime's poller, whose
// hang-up the kernel signals to the worker.

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

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
	// Worker.Left) without waiting.
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

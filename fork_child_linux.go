package multiexit

import (
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

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
// parent never reads or writes its end, only holds and closes it, and the
// worker's os.NewFile sees a blocking descriptor either way.
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

// parentDeathSignal is the signal the kernel sends this process when the
// thread that started it exits (PR_SET_PDEATHSIG; Start asks for SIGTERM).
// The setting is per thread, and only the main thread has it: it is read
// during package initialisation, which runs on the main thread.
var parentDeathSignal = func() syscall.Signal {
	var sig int32
	if err := unix.Prctl(unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&sig)), 0, 0, 0); err != nil {
		return 0
	}
	return syscall.Signal(sig)
}()

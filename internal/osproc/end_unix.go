//go:build unix

package osproc

// Dying by a signal after the hooks.

import (
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// End ends the process after its hooks: by sig where it can, so that its
// parent's wait status says "killed by SIGTERM" (a shell shows 143,
// systemd counts a clean stop, bash stops a script loop after a Ctrl-C'd
// child); with code (128+signal) where it cannot: as PID 1 of a PID
// namespace (the kernel drops a default-action signal that init sends
// itself), and for a signal whose default action does not end a process.
// It does not return.
func End(code int, sig os.Signal) {
	if s, ok := sig.(syscall.Signal); ok && os.Getpid() != 1 && terminates(s) {
		dieBy(s)
	}
	os.Exit(code)
}

// dieBy resets sig to its default action and sends it to this process; it
// returns only if the process survived that.
func dieBy(sig syscall.Signal) {
	runtime.LockOSThread()
	// Dying by SIGQUIT, SIGSEGV or SIGABRT (a child's, taken by ExitAs)
	// is not a crash of this process: no core file.
	unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
	setDefault(sig)
	// A signal a thread sends its own process, unblocked in that thread,
	// is delivered before kill returns.
	unix.Kill(os.Getpid(), sig)
	time.Sleep(100 * time.Millisecond)
}

// terminates reports whether sig's default action ends the process.
func terminates(sig syscall.Signal) bool {
	switch sig {
	case unix.SIGCHLD, unix.SIGCONT, unix.SIGURG, unix.SIGWINCH,
		unix.SIGSTOP, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU:
		return false
	}
	return sig > 0
}

// EndOf is how the process that ps describes ended: its exit code (128+
// signal if a signal killed it) and the signal, if one did. A nil ps is
// exit code 1.
func EndOf(ps *os.ProcessState) (code int, sig os.Signal) {
	if ps == nil {
		return 1, nil
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), ws.Signal()
	}
	return ps.ExitCode(), nil
}

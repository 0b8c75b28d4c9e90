//go:build unix && !linux

package osproc

// macOS and the BSDs: no Pdeathsig, a signal's default action through the
// Go runtime, and the terminal's foreground without job control mirroring.

import (
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// setDeathSignal: there is no Pdeathsig here; a worker sees its parent's
// death as EOF on the control channel.
func setDeathSignal(*syscall.SysProcAttr) {}

// setDefault gives sig back to the Go runtime, which, with nothing
// notified, ends the process by it. A signal this process was started with
// ignored stays ignored here, and the process then exits with 128+signal.
func setDefault(sig syscall.Signal) { signal.Reset(sig) }

// setForeground makes pgrp the terminal's foreground group. This process
// is in a background group then, so the kernel would stop it with SIGTTOU:
// the signal is ignored meanwhile (there is no per-thread mask to block it
// with here; a child started in that instant would inherit the ignored
// SIGTTOU).
func setForeground(fd, pgrp int) {
	signal.Ignore(unix.SIGTTOU)
	unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, pgrp)
	signal.Reset(unix.SIGTTOU)
}

// Watch: stops are not mirrored here (see multiexit.Foreground); the job
// only keeps the child's group for holdsTerminal.
func (j *Job) Watch(t Target) {
	if j != nil {
		j.pgid = t.PID
		jobGroups.add(j.pgid)
	}
}

// signalParent sends sig to ppid if it is still this process's parent.
func signalParent(ppid int, sig unix.Signal) {
	if unix.Getppid() == ppid {
		unix.Kill(ppid, sig)
	}
}

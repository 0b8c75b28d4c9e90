//go:build unix && !linux

package multiexit

import (
	"os/signal"

	"golang.org/x/sys/unix"
)

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

// watch: stops are not mirrored here (see Foreground); the job only keeps
// the child's group for holdsTerminal.
func (j *ttyJob) watch(c *Child) {
	if j != nil {
		j.pgid = c.PID()
		jobGroups.add(j.pgid)
	}
}

// signalParent sends sig to ppid if it is still this process's parent.
func signalParent(ppid int, sig unix.Signal) {
	if unix.Getppid() == ppid {
		unix.Kill(ppid, sig)
	}
}

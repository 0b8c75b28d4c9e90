package multiexit

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// setForeground makes pgrp the terminal's foreground group. This process
// is in a background group then, so the kernel would stop it with SIGTTOU:
// the signal is blocked in the calling thread meanwhile.
func setForeground(fd, pgrp int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set, old unix.Sigset_t
	set.Val[(unix.SIGTTOU-1)/64] |= 1 << ((unix.SIGTTOU - 1) % 64)
	unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old)
	unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, pgrp)
	unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
}

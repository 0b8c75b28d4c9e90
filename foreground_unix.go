//go:build unix

package multiexit

import (
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// toForeground sets cmd up to be started in the foreground of the terminal
// (see Foreground) and returns the terminal's descriptor, or -1.
func toForeground(cmd *exec.Cmd) int {
	a := cmd.SysProcAttr
	if a.Setsid || a.Setctty {
		return -1
	}
	fd := -1
	if f, ok := cmd.Stdin.(*os.File); ok && isTerminal(int(f.Fd())) {
		fd = int(f.Fd())
	} else if isTerminal(int(os.Stdin.Fd())) {
		fd = int(os.Stdin.Fd())
	}
	if fd < 0 {
		return -1
	}
	if pgrp, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP); err != nil || pgrp != unix.Getpgrp() {
		return -1 // not ours to give
	}
	a.Foreground, a.Ctty = true, fd // Go's child makes its group the foreground before it executes
	return fd
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	return err == nil
}

// takeForeground gives the terminal's foreground back to this process's
// group once the child that had it exited (and only if its group still has
// it).
func (c *Child) takeForeground() {
	if c.tty < 0 {
		return
	}
	if pgrp, err := unix.IoctlGetInt(c.tty, unix.TIOCGPGRP); err != nil || pgrp != c.cmd.Process.Pid {
		return
	}
	setForeground(c.tty, unix.Getpgrp())
}

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
	if a.Setsid || a.Setctty || (a.Setpgid && a.Pgid != 0) {
		return -1
	}
	fd := -1
	if f, ok := cmd.Stdin.(*os.File); ok {
		fd = fdOf(f)
	}
	if !isTerminal(fd) {
		fd = 0 // this process's standard input
	}
	if !isTerminal(fd) {
		return -1
	}
	if pgrp, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP); err != nil || pgrp != unix.Getpgrp() {
		return -1 // not ours to give
	}
	// A descriptor of its own, to take the foreground back with whatever
	// the caller does with its file meanwhile.
	own, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return -1
	}
	a.Foreground, a.Ctty = true, own // Go's child makes its group the foreground before it executes
	return own
}

// fdOf is f's descriptor, without switching it to blocking mode as Fd does.
func fdOf(f *os.File) int {
	fd := -1
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(u uintptr) { fd = int(u) })
	}
	return fd
}

func isTerminal(fd int) bool {
	if fd < 0 {
		return false
	}
	_, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	return err == nil
}

// dropTerminal closes tty, the terminal's descriptor toForeground returned
// for a child that did not start.
func dropTerminal(tty int) {
	if tty >= 0 {
		unix.Close(tty)
	}
}

// takeForeground gives the foreground of tty, the terminal's descriptor
// toForeground returned, back to this process's group once the child
// (leading group pgid) that had it exited, and only if that group still
// has it; it closes tty.
func takeForeground(tty, pgid int) {
	if tty < 0 {
		return
	}
	defer unix.Close(tty)
	if pgrp, err := unix.IoctlGetInt(tty, unix.TIOCGPGRP); err != nil || pgrp != pgid {
		return
	}
	setForeground(tty, unix.Getpgrp())
}

//go:build unix

package osproc

// A child run as a job of this process's terminal (multiexit.Foreground).

import (
	"os"
	"os/exec"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
)

// Job is a Foreground child's place in the terminal's job control. A nil
// *Job is valid and does nothing.
type Job struct {
	tty  int           // a descriptor of the terminal, this process's own
	pgid int           // the child's process group (its PID), once started
	done chan struct{} // closed when Watch's goroutine has ended; nil if none
}

// ToForeground sets cmd, prepared (see Prepare), up to be started as a job
// of the terminal (see multiexit.Foreground) and returns its job, or nil:
// for a command that starts a session or joins another group, or where
// there is no terminal. The child is started in the terminal's foreground
// if this process has it.
func ToForeground(cmd *exec.Cmd) *Job {
	a := cmd.SysProcAttr
	if a.Setsid || a.Setctty || (a.Setpgid && a.Pgid != 0) {
		return nil
	}
	tty := openTerminal()
	if tty < 0 {
		return nil
	}
	if pgrp, err := unix.IoctlGetInt(tty, unix.TIOCGPGRP); err == nil && pgrp == unix.Getpgrp() {
		a.Foreground, a.Ctty = true, tty // Go's child makes its group the foreground before it executes
	}
	return &Job{tty: tty}
}

// openTerminal returns a descriptor of this process's controlling
// terminal, its own (close-on-exec, so that it stays usable whatever the
// caller does with its files), or -1 if there is none.
func openTerminal() int {
	for fd := range 3 {
		if isTerminal(fd) {
			own, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
			if err == nil {
				return own
			}
		}
	}
	fd, err := unix.Open("/dev/tty", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	if !isTerminal(fd) {
		unix.Close(fd)
		return -1
	}
	return fd
}

// isTerminal reports whether fd is this process's controlling terminal:
// TIOCGPGRP fails on any other.
func isTerminal(fd int) bool {
	if fd < 0 {
		return false
	}
	_, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	return err == nil
}

// Drop closes the terminal of a child that did not start.
func (j *Job) Drop() {
	if j != nil {
		unix.Close(j.tty)
	}
}

// End ends the job of a child that exited: once Watch's goroutine is done,
// it gives the foreground back to this process's group if the child's
// group still has it, and closes the terminal.
func (j *Job) End() {
	if j == nil {
		return
	}
	if j.done != nil {
		<-j.done
	}
	jobGroups.remove(j.pgid)
	defer unix.Close(j.tty)
	if pgrp, err := unix.IoctlGetInt(j.tty, unix.TIOCGPGRP); err != nil || pgrp != j.pgid {
		return
	}
	setForeground(j.tty, unix.Getpgrp())
}

// jobGroups are the process groups of the running Foreground children: a
// worker that has one of them in the terminal's foreground holds the
// terminal (see RelayInterrupts).
var jobGroups groupSet

type groupSet struct {
	mu sync.Mutex
	m  map[int]int
}

func (s *groupSet) add(pgid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[int]int{}
	}
	s.m[pgid]++
}

func (s *groupSet) remove(pgid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[pgid]--; s.m[pgid] <= 0 {
		delete(s.m, pgid)
	}
}

func (s *groupSet) has(pgid int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[pgid] > 0
}

// RelayInterrupts catches SIGINT in a worker, which never stops on it
// itself: its parent orchestrates the stop. A SIGINT that comes while the
// worker's job holds the terminal's foreground (its own process group, or
// that of a Foreground child of its own: the terminal's Ctrl-C reached it,
// not its parent) is passed to the parent, ppid, as the terminal would
// have sent it to a parent that held the foreground; others are dropped.
// Caught, not ignored: an ignored disposition would pass on to every
// program the worker executes; a caught one is reset by exec.
func RelayInterrupts(ppid int) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt)
	go func() {
		for range ch {
			if holdsTerminal() {
				signalParent(ppid, unix.SIGINT)
			}
		}
	}()
}

// holdsTerminal reports whether the terminal's foreground group is this
// process's or a Foreground child's.
func holdsTerminal() bool {
	tty := openTerminal()
	if tty < 0 {
		return false
	}
	defer unix.Close(tty)
	fg, err := unix.IoctlGetInt(tty, unix.TIOCGPGRP)
	return err == nil && (fg == unix.Getpgrp() || jobGroups.has(fg))
}

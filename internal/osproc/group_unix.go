//go:build unix

package osproc

// A child's process group on Unix, and signalling it.

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// Prepare gives the child its own process group, keeping what the caller
// set: a child that starts a session leads its group too; one that joins
// another group (Pgid set) is signalled alone. On Linux it also sets
// Pdeathsig to SIGTERM unless the caller chose one. It reports whether
// the child leads its group.
func Prepare(cmd *exec.Cmd) (leader bool) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	a := cmd.SysProcAttr
	setDeathSignal(a)
	switch {
	case a.Setsid:
		return true
	case a.Setpgid && a.Pgid != 0:
		return false
	}
	a.Setpgid = true
	return true
}

// Terminate asks the child p to stop: SIGTERM and SIGCONT to its process
// group if it leads one (see Prepare), else to it alone. The caller keeps
// the group's ID from being reused meanwhile (the leader runs or is an
// unreaped zombie). It returns nil: a group already gone has nothing left
// to stop.
func Terminate(p *os.Process, leader bool) error {
	send(p, leader, syscall.SIGTERM)
	send(p, leader, syscall.SIGCONT)
	return nil
}

// Kill sends SIGKILL to the child p's process group if it leads one, else
// to it alone.
func Kill(p *os.Process, leader bool) { send(p, leader, syscall.SIGKILL) }

func send(p *os.Process, leader bool, sig syscall.Signal) {
	if leader {
		syscall.Kill(-p.Pid, sig)
		return
	}
	p.Signal(sig)
}

// SignalGroup sends sig to the child p's process group if it leads one,
// else to it alone. sig must be a syscall.Signal.
func SignalGroup(p *os.Process, leader bool, sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return fmt.Errorf("multiexit: SignalGroup: %v is not a syscall.Signal", sig)
	}
	if !leader {
		return p.Signal(s)
	}
	return syscall.Kill(-p.Pid, s)
}

// Uncatchable reports whether s is a signal no process can catch.
func Uncatchable(s os.Signal) bool { return s == syscall.SIGKILL || s == syscall.SIGSTOP }

package multiexit

import "os"

// Signal sends sig to the child alone, without stopping it: no grace
// period, no SIGKILL, and the child stays in its Start entry, which still
// stops it (and sweeps what it leaves) in its turn. Use it to pass a
// signal on: SIGHUP to reload, SIGUSR1, a terminal's SIGWINCH.
//
// Once the child has exited, Signal returns os.ErrProcessDone and sends
// nothing, so it never reaches a process that reuses the child's PID (on
// Linux the child is signalled only while it runs or is a zombie not yet
// reaped). On Windows only os.Kill can be sent, as with os.Process.Signal.
func (c *Child) Signal(sig os.Signal) error {
	if c.isFace() {
		return c.sup.current().Signal(sig) // a supervised child's current process
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isExited {
		return os.ErrProcessDone
	}
	return c.cmd.Process.Signal(sig)
}

// SignalGroup sends sig to the child's process group, without stopping it:
// the child and every descendant that stayed in its group (Start gives each
// child a group of its own), as a shell's job control or tini -g does.
// Descendants that left the group (setsid) do not get it; the entry's stop
// still catches them. A child that Start put in another group (the caller
// set SysProcAttr.Pgid) is signalled alone, as Stop does.
//
// Once the child has exited, SignalGroup returns os.ErrProcessDone and
// sends nothing (on Linux the group is signalled only while its leader
// runs or is a zombie not yet reaped, which keeps the group's ID from
// being reused). On Windows, os.Interrupt is sent as CTRL_BREAK_EVENT to
// the child's process group and os.Kill terminates the child; other
// signals return an error.
func (c *Child) SignalGroup(sig os.Signal) error {
	if c.isFace() {
		return c.sup.current().SignalGroup(sig)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isExited {
		return os.ErrProcessDone
	}
	return c.signalGroup(sig)
}

//go:build unix

package multiexit

import (
	"os/exec"
	"syscall"
)

// prepareChild gives the child its own process group, keeping what the
// caller set: a child that starts a session leads its group too; one that
// joins another group (Pgid set) is signalled alone. It reports whether
// the child leads its group.
func prepareChild(cmd *exec.Cmd) bool {
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

func (c *Child) terminate() {
	c.signal(syscall.SIGTERM)
	c.signal(syscall.SIGCONT)
}

func (c *Child) kill() { c.signal(syscall.SIGKILL) }

func (c *Child) signal(sig syscall.Signal) {
	if c.leader {
		syscall.Kill(-c.cmd.Process.Pid, sig)
		return
	}
	c.cmd.Process.Signal(sig)
}

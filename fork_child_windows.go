package multiexit

import (
	"os/exec"
	"syscall"

	"github.com/multiexit/multiexit/internal/contain"
	"golang.org/x/sys/windows"
)

func sysProcAttr(cmd *exec.Cmd) *syscall.SysProcAttr {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	return cmd.SysProcAttr
}

// prepareChild starts the child in a process group of its own, so that
// CTRL_BREAK_EVENT reaches it alone, and inside this process's job (see
// contain.Job).
func prepareChild(cmd *exec.Cmd) bool {
	sysProcAttr(cmd).CreationFlags |= windows.CREATE_NEW_PROCESS_GROUP
	contain.Job(rt.logger())
	return true
}

// terminate asks the child to stop. A worker is told by closing its control
// channel: it sees EOF, as when its parent dies, and shuts down with 143;
// that needs no console. CTRL_BREAK_EVENT then goes to the child's process
// group: an external child gets os.Interrupt (a Go program) or the default
// handler's exit; a worker ignores it, and the programs it started in its
// group get it. CTRL_BREAK_EVENT reaches only processes attached to this
// process's console: a process without one (a service) cannot send it, a
// child started with its own console does not receive it, and Wine refuses
// it. An external child that cannot be sent it is terminated after the
// grace period; that is logged.
func (c *Child) terminate() {
	if c.worker {
		c.deathW.Close()
	}
	err := windows.GenerateConsoleCtrlEvent(windows.CTRL_BREAK_EVENT, uint32(c.cmd.Process.Pid))
	switch {
	case err == nil:
	case c.worker:
		rt.logger().Info("multiexit: cannot send CTRL_BREAK_EVENT to the worker's process group; the worker itself was told through its control channel",
			"pid", c.PID(), "cmd", c.cmd.Path, "err", err)
	default:
		rt.logger().Warn("multiexit: cannot send CTRL_BREAK_EVENT to the child (does this process have a console?); it will be terminated after the grace period",
			"pid", c.PID(), "cmd", c.cmd.Path, "grace", rt.config().grace, "err", err)
	}
}

// kill terminates the child (TerminateProcess, exit code 1). A worker's own
// children then see their parent die; an external child's descendants stay
// in this process's job, which kills them when this process exits.
func (c *Child) kill() { c.cmd.Process.Kill() }

package multiexit

import (
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/windows"
)

// passControl lets the worker inherit its ends of the control channel; the
// registry carries their handle values.
func passControl(cmd *exec.Cmd, ends [2]*os.File) [2]uintptr {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.AdditionalInheritedHandles = append(cmd.SysProcAttr.AdditionalInheritedHandles,
		syscall.Handle(ends[0].Fd()), syscall.Handle(ends[1].Fd()))
	return [2]uintptr{ends[0].Fd(), ends[1].Fd()}
}

func openControl(ids [2]uintptr) (death, ack *os.File) {
	return os.NewFile(ids[0], "multiexit-parent"), os.NewFile(ids[1], "multiexit-ack")
}

// prepareChild starts the child in a new process group, so that
// CTRL_BREAK_EVENT can reach it alone.
func prepareChild(cmd *exec.Cmd) bool {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.CreationFlags |= windows.CREATE_NEW_PROCESS_GROUP
	return true
}

func (c *Child) terminate() {
	windows.GenerateConsoleCtrlEvent(windows.CTRL_BREAK_EVENT, uint32(c.cmd.Process.Pid))
}

func (c *Child) kill() { c.cmd.Process.Kill() }

// On Windows CTRL_BREAK_EVENT arrives as os.Interrupt: it is how a parent
// stops a worker, so a worker catches it.
const workerIgnoresInterrupt = false

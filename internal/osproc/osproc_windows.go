package osproc

// Windows: a process group of its own for CTRL_BREAK_EVENT,
// TerminateProcess, exit codes instead of death by a signal, and no
// terminal job control.

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/windows"
)

// Prepare starts the child in a process group of its own, so that
// CTRL_BREAK_EVENT reaches it alone. It reports true: the child leads its
// group.
func Prepare(cmd *exec.Cmd) (leader bool) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.CreationFlags |= windows.CREATE_NEW_PROCESS_GROUP
	return true
}

// Terminate sends CTRL_BREAK_EVENT to the child's process group: an
// external child gets os.Interrupt (a Go program) or the default handler's
// exit; a worker ignores it (its parent tells it through the control
// channel), and the programs it started in its group get it.
// CTRL_BREAK_EVENT reaches only processes attached to this process's
// console: a process without one (a service) cannot send it, a child
// started with its own console does not receive it, and Wine refuses it;
// the error says so.
func Terminate(p *os.Process, _ bool) error {
	return windows.GenerateConsoleCtrlEvent(windows.CTRL_BREAK_EVENT, uint32(p.Pid))
}

// Kill terminates the child (TerminateProcess, exit code 1). A worker's
// own children then see their parent die; an external child's descendants
// stay in this process's job, which kills them when this process exits.
func Kill(p *os.Process, _ bool) { p.Kill() }

// SignalGroup sends os.Interrupt as CTRL_BREAK_EVENT to the child's
// process group, and os.Kill as TerminateProcess; other signals are an
// error.
func SignalGroup(p *os.Process, _ bool, sig os.Signal) error {
	switch sig {
	case os.Kill:
		return p.Kill()
	case os.Interrupt:
		return windows.GenerateConsoleCtrlEvent(windows.CTRL_BREAK_EVENT, uint32(p.Pid))
	}
	return fmt.Errorf("multiexit: SignalGroup: %v cannot be sent on Windows", sig)
}

// Uncatchable reports whether s is a signal no process can catch: on
// Windows, os.Kill (TerminateProcess).
func Uncatchable(s os.Signal) bool { return s == os.Kill }

// End ends the process after its hooks. Windows has no death by a signal:
// a shutdown begun by one exits with 128+signal (130 for Ctrl-C).
func End(code int, _ os.Signal) { os.Exit(code) }

// EndOf is the exit code of the process that ps describes; a nil ps is
// exit code 1.
func EndOf(ps *os.ProcessState) (code int, sig os.Signal) {
	if ps == nil {
		return 1, nil
	}
	return ps.ExitCode(), nil
}

// Job: a Windows console has no foreground process group.
type Job struct{}

// ToForeground returns nil: see Job.
func ToForeground(*exec.Cmd) *Job { return nil }

func (*Job) Watch(Target) {}

func (*Job) End() {}

func (*Job) Drop() {}

// RelayInterrupts catches and drops os.Interrupt in a worker: it is
// CTRL_C_EVENT and CTRL_BREAK_EVENT here, a console's Ctrl-C and
// Ctrl-Break reach every process attached to it, and the parent stops a
// worker through the control channel.
func RelayInterrupts(int) {
	signal.Notify(make(chan os.Signal, 1), os.Interrupt)
}

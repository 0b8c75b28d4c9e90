package multiexit

import (
	"os"
	"os/exec"
	"os/signal"
)

// ttyJob: a Windows console has no foreground process group.
type ttyJob struct{}

func toForeground(*exec.Cmd) *ttyJob { return nil }

func (*ttyJob) watch(*Child) {}

func (*ttyJob) end() {}

func (*ttyJob) drop() {}

// relayInterrupts catches and drops os.Interrupt in a worker: it is
// CTRL_C_EVENT and CTRL_BREAK_EVENT here, a console's Ctrl-C and
// Ctrl-Break reach every process attached to it, and the parent stops a
// worker through the control channel.
func relayInterrupts(int) {
	signal.Notify(make(chan os.Signal, 1), os.Interrupt)
}

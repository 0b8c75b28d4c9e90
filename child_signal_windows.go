package multiexit

import (
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

func (c *Child) signalGroup(sig os.Signal) error {
	switch sig {
	case os.Kill:
		return c.cmd.Process.Kill()
	case os.Interrupt:
		return windows.GenerateConsoleCtrlEvent(windows.CTRL_BREAK_EVENT, uint32(c.cmd.Process.Pid))
	}
	return fmt.Errorf("multiexit: SignalGroup: %v cannot be sent on Windows", sig)
}

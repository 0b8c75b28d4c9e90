//go:build unix

package multiexit

import (
	"fmt"
	"os"
	"syscall"
)

func (c *Child) signalGroup(sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return fmt.Errorf("multiexit: SignalGroup: %v is not a syscall.Signal", sig)
	}
	if !c.leader {
		return c.cmd.Process.Signal(s)
	}
	return syscall.Kill(-c.cmd.Process.Pid, s)
}

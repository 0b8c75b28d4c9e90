//go:build !linux

package multiexit

import (
	"os/exec"
	"syscall"
)

func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

// waitExited cannot wait without reaping here: the group ID is not pinned.
func waitExited(pid int) bool { return false }

// parentDeathSignal: no Pdeathsig here; the control channel's end tells a
// worker that its parent died.
const parentDeathSignal = syscall.Signal(0)

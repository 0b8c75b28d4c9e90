//go:build !linux

package multiexit

import (
	"os"
	"os/exec"
)

func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

// groupPinned: the group is killed after its leader was reaped (see
// waitExited).
const groupPinned = false

// waitExited cannot wait without reaping here: the group ID is not pinned.
func waitExited(pid int) bool { return false }

// signalOnHangup: only Linux can choose the signal O_ASYNC sends; the
// worker watches the control channel.
func signalOnHangup(int) (armed, hungUp bool) { return false, false }

// selfExecutable is this process's binary.
func selfExecutable() (string, error) { return os.Executable() }

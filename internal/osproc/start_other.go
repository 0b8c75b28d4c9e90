//go:build !linux

package osproc

// Starting processes without Linux.

import (
	"os"
	"os/exec"
)

// StartCmd starts cmd (exec.Cmd.Start).
func StartCmd(cmd *exec.Cmd) error { return cmd.Start() }

// SelfExecutable is this process's binary (os.Executable).
func SelfExecutable() (string, error) { return os.Executable() }

// GroupPinned: the group is killed after its leader was reaped (see
// WaitExited).
const GroupPinned = false

// WaitExited cannot wait without reaping here: it returns false, and the
// group ID is not pinned.
func WaitExited(pid int) bool { return false }

//go:build !linux

package multiexit

import "os/exec"

func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

// waitExited cannot wait without reaping here: the group ID is not pinned.
func waitExited(pid int) bool { return false }

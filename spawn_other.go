//go:build !linux

package multiexit

// Starting processes without Linux.

import (
	"os"
	"os/exec"
)

func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

// selfExecutable is this process's binary.
func selfExecutable() (string, error) { return os.Executable() }

//go:build unix && !linux

package multiexit

import (
	"os"
	"syscall"
)

// setDeathSignal: there is no Pdeathsig here; a worker sees its parent's
// death as EOF on the control channel.
func setDeathSignal(*syscall.SysProcAttr) {}

// deathPipe makes the pipe whose closing tells a worker that its parent
// died.
func deathPipe() (r, w *os.File, err error) { return os.Pipe() }

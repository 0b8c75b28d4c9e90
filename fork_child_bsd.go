//go:build unix && !linux

package multiexit

import (
	"syscall"
)

// setDeathSignal: there is no Pdeathsig here; a worker sees its parent's
// death as EOF on the control channel.
func setDeathSignal(*syscall.SysProcAttr) {}

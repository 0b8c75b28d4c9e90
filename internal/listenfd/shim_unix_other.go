//go:build unix && !linux

package listenfd

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
)

const shimVar = "MULTIEXIT_LISTEN_EXEC"

// viaShim: the exec shim is Linux-only (it checks its parent's start time
// in /proc).
func viaShim(cmd *exec.Cmd, n int, env *[]string) (*Handoff, error) {
	return nil, fmt.Errorf("%w on %s: the exec shim is Linux-only; a multiexit worker (GoWorker) sets LISTEN_PID itself", errors.ErrUnsupported, runtime.GOOS)
}

// Shim is the exec shim's entry: Linux only; here it does nothing.
func Shim() {}

//go:build unix && !linux

package multiexit

import (
	"os/signal"
	"syscall"
)

// setDefault gives sig back to the Go runtime, which, with nothing
// notified, ends the process by it. A signal this process was started with
// ignored stays ignored here, and the process then exits with 128+signal.
func setDefault(sig syscall.Signal) { signal.Reset(sig) }

//go:build unix

package multiexit

import (
	"os"
	"syscall"
)

// uncatchable reports whether s is a signal no process can catch.
func uncatchable(s os.Signal) bool { return s == syscall.SIGKILL || s == syscall.SIGSTOP }

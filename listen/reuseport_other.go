//go:build !linux

package listen

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
)

// ReusePort is Linux-only (see the Linux documentation of this function):
// here it returns an error.
func ReusePort(network, address string, c syscall.RawConn) error {
	return fmt.Errorf("SO_REUSEPORT load balancing: %w on %s", errors.ErrUnsupported, runtime.GOOS)
}

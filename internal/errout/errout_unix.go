//go:build unix

package errout

import (
	"os"

	"golang.org/x/sys/unix"
)

// Dup returns a duplicate of descriptor 2, close-on-exec, or os.Stderr if
// it cannot be made.
func Dup() *os.File {
	fd, err := unix.FcntlInt(2, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return os.Stderr
	}
	return os.NewFile(uintptr(fd), "/dev/stderr")
}

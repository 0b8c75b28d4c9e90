//go:build unix

package multiexit

import (
	"os"

	"golang.org/x/sys/unix"
)

// dupStderr is a duplicate of descriptor 2, close-on-exec, or os.Stderr if
// it cannot be made (see stderrLog).
func dupStderr() *os.File {
	fd, err := unix.FcntlInt(2, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return os.Stderr
	}
	return os.NewFile(uintptr(fd), "/dev/stderr")
}

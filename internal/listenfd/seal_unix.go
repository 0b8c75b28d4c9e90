//go:build unix

package listenfd

import (
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

var sealOnce sync.Once

// Seal marks close-on-exec, once, the descriptors that socket activation
// passed to this process (LISTEN_FDS from descriptor 3, if LISTEN_PID
// names this process): they stay open in it, for its own use, but no
// program it starts inherits them unless it is handed them (Pass):
// otherwise a child, even one that dropped its privileges, could accept
// the service's clients. Unlike Parse it reports nothing and skips a
// descriptor that is not open; a program that took them with go-systemd's
// activation.Files has them marked already. On Windows it does nothing.
func Seal() {
	sealOnce.Do(func() {
		if pid, err := strconv.Atoi(os.Getenv(EnvPID)); err != nil || pid != os.Getpid() {
			return
		}
		n, err := strconv.Atoi(os.Getenv(EnvFDs))
		if err != nil || n <= 0 {
			return
		}
		for fd := StartFD; fd < StartFD+min(n, 1<<16); fd++ {
			unix.CloseOnExec(fd)
		}
	})
}

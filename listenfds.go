package multiexit

import (
	"os"
	"strconv"
	"sync"

	"github.com/multiexit/multiexit/internal/sdnotify"
)

// What socket activation passed to this process stays with it. systemd
// (and systemd-socket-activate, and the other managers that speak the
// protocol) hands a service its listening sockets as descriptors 3 to
// 3+LISTEN_FDS-1, named by LISTEN_FDS and LISTEN_PID (this process's PID),
// and leaves them inheritable. Start's children do not inherit the
// variables (sdnotify.ScrubEnv); sealListenFDs makes sure they do not inherit
// the descriptors either: otherwise a child, even one that dropped its
// privileges, could accept the service's clients. This is the one place
// that decides it: handing the listeners to workers on purpose begins
// here.

// maxListenFDs bounds the descriptors a LISTEN_FDS value can name.
const maxListenFDs = 1 << 16

var listenFDsOnce sync.Once

// sealListenFDs marks close-on-exec, once, the descriptors that socket
// activation passed to this process (see above), if LISTEN_PID names this
// process: they stay open in it, for its own use. A program that took
// them with go-systemd's activation.Files has them marked already.
func sealListenFDs() {
	listenFDsOnce.Do(func() {
		if pid, err := strconv.Atoi(os.Getenv(sdnotify.ListenPID)); err != nil || pid != os.Getpid() {
			return
		}
		n, err := strconv.Atoi(os.Getenv(sdnotify.ListenFDs))
		if err != nil || n <= 0 {
			return
		}
		for fd := 3; fd < 3+min(n, maxListenFDs); fd++ {
			markCloseOnExec(fd)
		}
	})
}

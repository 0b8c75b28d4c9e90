//go:build unix

package multiexit

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// sendDatagram sends msg to the unix datagram socket at addr; an addr that
// starts with '@' names a socket in Linux's abstract namespace.
func sendDatagram(addr, msg string) error {
	syscall.ForkLock.RLock() // no fork between socket and close-on-exec
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Sendto(fd, []byte(msg), 0, &unix.SockaddrUnix{Name: addr})
}

// notifying reports whether this process speaks to a service manager. It
// allocates nothing and makes no system call.
func notifying() bool { return os.Getenv(envNotifySocket) != "" }

//go:build unix

package sdnotify

import (
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Enabled reports whether this process speaks to a service manager
// (NOTIFY_SOCKET is set). It allocates nothing and makes no system call.
func Enabled() bool { return os.Getenv(Socket) != "" }

// A Sender sends datagrams to one notify socket through a socket of its
// own, kept open: for a process that sends many, such as a relay. It is
// not safe for concurrent use.
type Sender struct {
	fd   int
	to   unix.SockaddrUnix
	addr string
}

// Open returns a Sender to the notify socket at addr: a path, or on Linux
// a name in the abstract namespace that starts with '@'. Its socket is
// close-on-exec.
func Open(addr string) (*Sender, error) {
	fd, err := socket()
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	return &Sender{fd: fd, to: unix.SockaddrUnix{Name: addr}, addr: addr}, nil
}

// Send sends msg in one datagram.
func (s *Sender) Send(msg []byte) error {
	return unix.Sendto(s.fd, msg, sendFlags(), &s.to)
}

// Addr is the address the Sender sends to.
func (s *Sender) Addr() string { return s.addr }

// Close closes the Sender's socket.
func (s *Sender) Close() error { return unix.Close(s.fd) }

// send sends state to addr in one datagram, from a socket of its own.
func send(addr, state string) error {
	fd, err := socket()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Sendto(fd, []byte(state), sendFlags(), &unix.SockaddrUnix{Name: addr})
}

// socket makes a close-on-exec datagram socket. SOCK_CLOEXEC is not on
// every Unix system (macOS), so the flag is set under ForkLock: no fork
// between the socket and the flag.
func socket() (int, error) {
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	return fd, err
}

// sendFlags asks Linux for no SIGPIPE: a program that forwards every
// signal it gets (the multiexit command) must not get one from its own
// send. Elsewhere the Go runtime ignores a SIGPIPE that a write to a
// descriptor other than 1 and 2 raises.
func sendFlags() int {
	if runtime.GOOS == "linux" {
		return unix.MSG_NOSIGNAL
	}
	return 0
}

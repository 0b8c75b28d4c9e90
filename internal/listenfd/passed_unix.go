//go:build unix

package listenfd

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Passed is what the systemd variables pass this process: descriptors
// from 3 on, each with a name. Its methods may be called from several
// goroutines.
type Passed struct {
	// Ignored says why the variables, though set, are not for this
	// process (LISTEN_PID is missing or names another process, as for a
	// program that inherited them): then Passed holds no descriptor. ""
	// when they are for this process, or when none is set.
	Ignored string

	mu     sync.Mutex
	fds    []int
	names  []string
	closed bool
}

// Parse reads LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES as libsystemd's
// sd_listen_fds_with_names does. The descriptors are this process's only
// if LISTEN_PID is its PID; else Passed is empty and says why in Ignored.
// If they are, every one of them is made close-on-exec (as sd_listen_fds
// does), so that no program this process starts inherits them unless it
// is handed them (Pass). A LISTEN_PID or LISTEN_FDS that is not a number,
// a LISTEN_FDS below 1, a descriptor that is not open, or LISTEN_FDNAMES
// with another number of names than LISTEN_FDS is an error naming the
// variable or the descriptor. Without LISTEN_FDNAMES every name is
// "unknown", as libsystemd says. Parse does not change the environment.
//
// Unix only; Windows returns an error.
func Parse() (*Passed, error) {
	pidS, hasPID := os.LookupEnv(EnvPID)
	fdsS, hasFDs := os.LookupEnv(EnvFDs)
	if !hasPID {
		if hasFDs {
			return &Passed{Ignored: EnvFDs + " is set but " + EnvPID + " is not"}, nil
		}
		return &Passed{}, nil
	}
	pid, err := strconv.Atoi(pidS)
	if err != nil || pid < 1 {
		return nil, fmt.Errorf("%s=%q is not a process ID", EnvPID, pidS)
	}
	if self := os.Getpid(); pid != self {
		return &Passed{Ignored: fmt.Sprintf("%s=%d names another process than this one (%d)", EnvPID, pid, self)}, nil
	}
	if !hasFDs {
		return &Passed{}, nil
	}
	n, err := strconv.Atoi(fdsS)
	if err != nil {
		return nil, fmt.Errorf("%s=%q is not a number", EnvFDs, fdsS)
	}
	if n < 1 || n > 1<<16 {
		return nil, fmt.Errorf("%s=%d: want from 1 to 65536 descriptors", EnvFDs, n)
	}
	p := &Passed{fds: make([]int, n), names: make([]string, n)}
	for i := range n {
		fd := StartFD + i
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
			return nil, fmt.Errorf("descriptor %d of %s=%d: %w", fd, EnvFDs, n, os.NewSyscallError("fcntl", err))
		}
		p.fds[i], p.names[i] = fd, "unknown"
	}
	if v, ok := os.LookupEnv(EnvNames); ok {
		names := strings.Split(v, ":")
		if len(names) != n {
			return nil, fmt.Errorf("%s=%q has %d names for %s=%d", EnvNames, v, len(names), EnvFDs, n)
		}
		copy(p.names, names)
	}
	return p, nil
}

// Adopt is Parse for a parent that systemd started with sockets: if they
// are its own, it also takes LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES
// out of the environment, so that nothing this process starts, nor a
// later Parse, finds them. The caller takes the sockets it wants
// (Passed.Socket) and then closes the rest (Passed.Close).
func Adopt() (*Passed, error) {
	p, err := Parse()
	if err != nil || len(p.fds) == 0 {
		return p, err
	}
	os.Unsetenv(EnvPID)
	os.Unsetenv(EnvFDs)
	os.Unsetenv(EnvNames)
	return p, nil
}

// Names are the names of the descriptors, in order (from descriptor 3).
func (p *Passed) Names() []string {
	return append([]string(nil), p.names...)
}

// File returns a new file on a duplicate (close-on-exec) of the descriptor
// passed as name, which must be a socket, and listening if it is a stream
// socket; the caller closes it. The passed descriptor itself stays open.
// A name that was not passed, a name passed for more than one descriptor
// (use the order, with Names), or a descriptor that is not such a socket
// is an error that names the descriptor and the name.
func (p *Passed) File(name string) (*os.File, error) {
	fd, err := p.dupSocket(name)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// Socket adopts the descriptor passed as name as this process's Socket,
// on a duplicate, with the checks of File. Its network and address are
// what the kernel says (an adopted Unix socket's file is systemd's: Close
// never removes it).
func (p *Passed) Socket(name string) (*Socket, error) {
	fd, err := p.dupSocket(name)
	if err != nil {
		return nil, err
	}
	network, addr, err := describe(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listener %q: %w", name, err)
	}
	return &Socket{name: name, network: network, addr: addr, f: os.NewFile(uintptr(fd), name)}, nil
}

// Close closes every passed descriptor (what File and Socket returned
// stays open). A parent that adopted its sockets calls it so that the
// others do not stay open for its lifetime; a worker need not: its
// descriptors are close-on-exec and cost nothing. Close is for the Passed
// of Adopt, which took the variables out of the environment: after Close
// nothing may use descriptors 3.. by those variables.
func (p *Passed) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for _, fd := range p.fds {
		unix.Close(fd)
	}
}

// dupSocket checks and duplicates the descriptor passed as name.
func (p *Passed) dupSocket(name string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Ignored != "" {
		return -1, fmt.Errorf("listener %q: no descriptors for this process: %s", name, p.Ignored)
	}
	if p.closed {
		return -1, fmt.Errorf("listener %q: the passed descriptors were closed", name)
	}
	fd := -1
	for i, n := range p.names {
		if n != name {
			continue
		}
		if fd >= 0 {
			return -1, fmt.Errorf("listener %q: the name is passed for descriptors %d and %d", name, fd, p.fds[i])
		}
		fd = p.fds[i]
	}
	if fd < 0 {
		if len(p.names) == 0 {
			return -1, fmt.Errorf("listener %q: no descriptors were passed (%s is not set)", name, EnvFDs)
		}
		return -1, fmt.Errorf("listener %q: not passed (%s=%s)", name, EnvNames, strings.Join(p.names, ":"))
	}
	if err := checkSocket(fd); err != nil {
		return -1, fmt.Errorf("descriptor %d (%q): %w", fd, name, err)
	}
	d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("descriptor %d (%q): %w", fd, name, os.NewSyscallError("dup", err))
	}
	return d, nil
}

// checkSocket says what is wrong with fd as a socket to serve: not a
// socket, or a stream socket that does not listen.
func checkSocket(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return os.NewSyscallError("fstat", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("not a socket (%s)", fileKind(uint32(st.Mode)))
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return os.NewSyscallError("getsockopt SO_TYPE", err)
	}
	if typ == unix.SOCK_STREAM || typ == unix.SOCK_SEQPACKET {
		if on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || on == 0 {
			return fmt.Errorf("a connection-mode socket that is not listening")
		}
	}
	return nil
}

func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return "a pipe"
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFDIR:
		return "a directory"
	}
	return fmt.Sprintf("mode %#o", mode)
}

// describe is the network and address of a socket.
func describe(fd int) (network, addr string, err error) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return "", "", os.NewSyscallError("getsockopt SO_TYPE", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return "", "", os.NewSyscallError("getsockname", err)
	}
	kind := map[int]string{unix.SOCK_STREAM: "tcp", unix.SOCK_DGRAM: "udp"}[typ]
	switch sa.(type) {
	case *unix.SockaddrInet4:
		network = kind + "4"
	case *unix.SockaddrInet6:
		network = kind + "6"
	case *unix.SockaddrUnix:
		network = map[int]string{unix.SOCK_STREAM: "unix", unix.SOCK_DGRAM: "unixgram", unix.SOCK_SEQPACKET: "unixpacket"}[typ]
	}
	if network == "" || network == "4" || network == "6" {
		return "", "", fmt.Errorf("a socket of type %d and address %T, not TCP, UDP or Unix", typ, sa)
	}
	return network, sockaddrString(sa), nil
}

// File is Parse's Passed.File: the socket passed to this process as name,
// on a new duplicate the caller closes. A worker calls it after Receive
// (multiexit's Install does); a program that systemd started calls it
// directly. It never calls Fd on a file of package net: the descriptor
// comes in through os.NewFile, whose mode stays as the sender left it.
func File(name string) (*os.File, error) {
	p, err := Parse()
	if err != nil {
		return nil, fmt.Errorf("listener %q: %w", name, err)
	}
	return p.File(name)
}

// Receive finishes a hand-off in a Go worker (GoWorker): if its parent
// passed it sockets (a private variable names the parent's PID, which must
// be this process's parent), it sets LISTEN_PID to this process's PID, so
// that File, multiexit/listen, go-systemd's activation and libsystemd find
// them, removes the private variable, and makes the descriptors
// close-on-exec (Parse), so that the programs the worker starts do not
// inherit them. Without the variable it does nothing and returns nil. A
// variable that names another process than the parent (a stale one) is
// removed, LISTEN_PID is left unset, and the error says so. multiexit's
// Install calls it first thing in a worker.
func Receive() error {
	v, ok := os.LookupEnv(markerVar)
	if !ok {
		return nil
	}
	os.Unsetenv(markerVar)
	if ppid, err := strconv.Atoi(v); err != nil || ppid != os.Getppid() {
		return fmt.Errorf("%s=%q does not name this process's parent (%d): the sockets it names are not taken", markerVar, v, os.Getppid())
	}
	os.Setenv(EnvPID, strconv.Itoa(os.Getpid()))
	_, err := Parse()
	return err
}

// Stream reports whether f, a socket from File, is a connection-mode
// socket (stream or seqpacket: for a listener) rather than a datagram one.
func Stream(f *os.File) (bool, error) {
	typ, err := unix.GetsockoptInt(int(f.Fd()), unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return false, os.NewSyscallError("getsockopt SO_TYPE", err)
	}
	return typ != unix.SOCK_DGRAM, nil
}

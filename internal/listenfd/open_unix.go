//go:build unix

package listenfd

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Open opens a named socket, bound to address, for children to serve
// (see Pass). network is one of:
//
//   - "tcp", "tcp4", "tcp6": a listening TCP socket. address is
//     "host:port" where host is an IP address literal ("127.0.0.1",
//     "[::1]") or empty for every address; names ("localhost") are not
//     resolved, since without package net there is no resolver. An empty
//     host with "tcp" listens on IPv6 and IPv4 (IPV6_V6ONLY off), or on
//     IPv4 alone where the kernel has no IPv6; with "tcp6" on IPv6 alone.
//     "0.0.0.0" is IPv4 only (package net would listen on both). port may
//     be 0: the kernel picks one, and Addr says which. SO_REUSEADDR is set,
//     so a restarted parent binds the port at once despite connections in
//     TIME_WAIT.
//   - "udp", "udp4", "udp6": a bound UDP socket, the same addresses.
//   - "unix", "unixpacket", "unixgram": a listening (or, for unixgram,
//     bound) Unix socket at the path address; on Linux "@name" is in the
//     abstract namespace (no file). An existing socket file at the path
//     that no one listens on (a connect is refused: left by a process that
//     was killed) is removed and replaced; one that someone listens on is
//     an error (EADDRINUSE), and so is any file that is not a socket, which
//     is never removed. The file is made with the process's umask. Close
//     removes it, if it is still the file Open made; children never remove
//     it (package net's FileListener does not unlink), and after a SIGKILL
//     of this process it stays until the next Open of the path replaces it.
//
// The socket is in blocking mode, as systemd passes sockets, and
// close-on-exec. A listening socket's backlog is the kernel's maximum
// (net.core.somaxconn on Linux, SOMAXCONN elsewhere). SO_REUSEPORT is not
// offered: a socket that this process holds without accepting on it would
// receive its share of the group's connections, and nobody would serve
// them (see the sub-package multiexit/listen's ReusePort for workers that
// open their own). Errors name the listener, the network and the address.
//
// Unix only; Windows returns an error.
func Open(name, network, address string) (*Socket, error) {
	s, err := open(name, network, address)
	if err != nil {
		return nil, fmt.Errorf("listener %q (%s %s): %w", name, network, address, err)
	}
	return s, nil
}

func open(name, network, address string) (*Socket, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	var typ int
	listen := true
	switch network {
	case "tcp", "tcp4", "tcp6", "unix":
		typ = unix.SOCK_STREAM
	case "unixpacket":
		typ = unix.SOCK_SEQPACKET
	case "udp", "udp4", "udp6", "unixgram":
		typ, listen = unix.SOCK_DGRAM, false
	default:
		return nil, fmt.Errorf("unknown network %q (want tcp, tcp4, tcp6, udp, udp4, udp6, unix, unixpacket or unixgram)", network)
	}
	var (
		fd     int
		unlink *fileID
		err    error
	)
	if strings.HasPrefix(network, "unix") {
		fd, unlink, err = openUnix(typ, address)
	} else {
		fd, err = openInet(typ, network, address)
	}
	if err != nil {
		return nil, err
	}
	if listen {
		if err := unix.Listen(fd, backlog()); err != nil {
			unix.Close(fd)
			removeSocketFile(unlink)
			return nil, os.NewSyscallError("listen", err)
		}
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		removeSocketFile(unlink)
		return nil, os.NewSyscallError("getsockname", err)
	}
	return &Socket{name: name, network: network, addr: sockaddrString(sa), f: os.NewFile(uintptr(fd), name), unlink: unlink}, nil
}

// Close closes the socket. A Unix socket file that Open made is removed,
// if the path still names it: a file that replaced it is left alone.
// Children that hold the socket keep serving it; a client can no longer
// connect through the removed path. It is safe to call more than once, but
// not while a Pass of the socket is still starting its command (the child
// could inherit whatever reuses the descriptor's number).
func (s *Socket) Close() error {
	err := s.f.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	removeSocketFile(s.unlink)
	if err != nil {
		return fmt.Errorf("%v: %w", s, err)
	}
	return nil
}

// socket makes a close-on-exec, blocking socket. syscall.ForkLock keeps a
// fork from copying it before it is close-on-exec (Darwin has no
// SOCK_CLOEXEC; one code for every Unix).
func socket(family, typ int) (int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, err := unix.Socket(family, typ, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	unix.CloseOnExec(fd)
	return fd, nil
}

func openInet(typ int, network, address string) (int, error) {
	host, port, err := splitHostPort(address)
	if err != nil {
		return -1, err
	}
	var ip netip.Addr
	if host != "" {
		ip, err = netip.ParseAddr(host)
		if err != nil {
			return -1, fmt.Errorf("host %q is not an IP address (names are not resolved)", host)
		}
		ip = ip.Unmap()
	}
	want := network[len(network)-1] // '4', '6', or 'p' for either
	switch {
	case want == '4' && ip.Is6():
		return -1, fmt.Errorf("%s is not an IPv4 address", host)
	case want == '6' && ip.Is4():
		return -1, fmt.Errorf("%s is not an IPv6 address", host)
	}
	// The family: the address's, or for an empty host IPv6 (dual-stack
	// unless tcp6/udp6) with IPv4 as the fallback.
	v6 := ip.Is6() || (!ip.IsValid() && want != '4')
	var fd int
	if v6 {
		fd, err = socket(unix.AF_INET6, typ)
		if err != nil && !ip.IsValid() && want != '6' && errors.Is(err, unix.EAFNOSUPPORT) {
			v6 = false
		} else if err != nil {
			return -1, err
		}
	}
	if !v6 {
		if fd, err = socket(unix.AF_INET, typ); err != nil {
			return -1, err
		}
	}
	var sa unix.Sockaddr
	if v6 {
		only := 0
		if want == '6' {
			only = 1
		}
		if !ip.IsValid() {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, only); err != nil {
				unix.Close(fd)
				return -1, os.NewSyscallError("setsockopt IPV6_V6ONLY", err)
			}
		}
		sa6 := &unix.SockaddrInet6{Port: port, Addr: ip.As16()}
		if z := ip.Zone(); z != "" {
			id, err := strconv.ParseUint(z, 10, 32)
			if err != nil {
				unix.Close(fd)
				return -1, fmt.Errorf("zone %q: only numeric zones (interface indexes) are supported", z)
			}
			sa6.ZoneId = uint32(id)
		}
		sa = sa6
	} else {
		var a [4]byte
		if ip.IsValid() {
			a = ip.As4()
		}
		sa = &unix.SockaddrInet4{Port: port, Addr: a}
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			unix.Close(fd)
			return -1, os.NewSyscallError("setsockopt SO_REUSEADDR", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("bind", err)
	}
	return fd, nil
}

// splitHostPort splits "host:port" and "[host]:port"; the port is a
// number from 0 to 65535 (service names are not looked up).
func splitHostPort(address string) (string, int, error) {
	i := strings.LastIndexByte(address, ':')
	if i < 0 {
		return "", 0, fmt.Errorf("address %q: missing port (want host:port)", address)
	}
	host, p := address[:i], address[i+1:]
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") {
			return "", 0, fmt.Errorf("address %q: missing ']'", address)
		}
		host = host[1 : len(host)-1]
	} else if strings.Contains(host, ":") {
		return "", 0, fmt.Errorf("address %q: an IPv6 address must be in brackets ([::1]:80)", address)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: port %q is not a number from 0 to 65535", address, p)
	}
	return host, int(port), nil
}

func openUnix(typ int, path string) (int, *fileID, error) {
	if path == "" {
		return -1, nil, errors.New("empty path")
	}
	abstract := path[0] == '@' && runtimeIsLinux
	if !abstract {
		if err := removeStale(path, typ); err != nil {
			return -1, nil, err
		}
	}
	fd, err := socket(unix.AF_UNIX, typ)
	if err != nil {
		return -1, nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return -1, nil, os.NewSyscallError("bind", err)
	}
	if abstract {
		return fd, nil, nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		unix.Close(fd)
		return -1, nil, err
	}
	return fd, &fileID{path: path, dev: uint64(st.Dev), ino: uint64(st.Ino)}, nil
}

// removeStale removes the socket file at path if no one listens on it
// (a connect is refused). A live socket, or a file of another kind, is an
// error; no file is fine.
func removeStale(path string, typ int) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return &os.PathError{Op: "bind", Path: path, Err: fmt.Errorf("%w (a file that is not a socket; it is left alone)", unix.EADDRINUSE)}
	}
	// A non-blocking probe: a listener whose queue is full makes it
	// EAGAIN (alive) instead of a wait.
	fd, err := socket(unix.AF_UNIX, typ)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	unix.SetNonblock(fd, true)
	err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
	switch {
	case err == nil || errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINPROGRESS):
		return &os.PathError{Op: "bind", Path: path, Err: fmt.Errorf("%w (a process listens on it)", unix.EADDRINUSE)}
	case errors.Is(err, unix.EPROTOTYPE):
		return &os.PathError{Op: "bind", Path: path, Err: fmt.Errorf("%w (a socket of another type is bound to it)", unix.EADDRINUSE)}
	case errors.Is(err, unix.ECONNREFUSED):
		// Stale: left by a process that died without removing it.
		if err := unix.Unlink(path); err != nil && !errors.Is(err, unix.ENOENT) {
			return &os.PathError{Op: "remove stale socket", Path: path, Err: err}
		}
		return nil
	default:
		return &os.PathError{Op: "probe existing socket", Path: path, Err: err}
	}
}

// removeSocketFile removes the Unix socket file id, if its path still
// names it.
func removeSocketFile(id *fileID) {
	if id == nil {
		return
	}
	var st unix.Stat_t
	if unix.Lstat(id.path, &st) == nil && uint64(st.Dev) == id.dev && uint64(st.Ino) == id.ino {
		unix.Unlink(id.path)
	}
}

// backlog is the longest accept queue the kernel allows, as package net
// computes it.
func backlog() int {
	if b, err := os.ReadFile("/proc/sys/net/core/somaxconn"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
			return min(n, 1<<16-1)
		}
	}
	return unix.SOMAXCONN
}

// sockaddrString is sa as Addr shows it.
func sockaddrString(sa unix.Sockaddr) string {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)).String()
	case *unix.SockaddrInet6:
		ip := netip.AddrFrom16(sa.Addr)
		if sa.ZoneId != 0 {
			ip = ip.WithZone(strconv.FormatUint(uint64(sa.ZoneId), 10))
		}
		return netip.AddrPortFrom(ip, uint16(sa.Port)).String()
	case *unix.SockaddrUnix:
		return sa.Name
	}
	return fmt.Sprintf("%T", sa)
}

func errnoErr(n uint32) error { return syscall.Errno(n) }

const runtimeIsLinux = runtime.GOOS == "linux"

// checkName reports whether name can travel in LISTEN_FDNAMES: systemd's
// rule for FileDescriptorName= (1 to 255 printable ASCII characters, no
// colon).
func checkName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("listener name %q: must have 1 to 255 characters", name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return fmt.Errorf("listener name %q: byte %d (%q) is not allowed (printable ASCII without spaces or ':')", name, i, c)
		}
	}
	return nil
}

// fileID names a file for good: a path may be replaced by another file.
type fileID struct {
	path     string
	dev, ino uint64
}

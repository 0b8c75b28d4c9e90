package listenfd_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/multiexit/multiexit/internal/listenfd"
)

// checkOpened checks what Open promises of every socket: blocking,
// close-on-exec, listening if stream, SO_REUSEADDR for TCP.
func checkOpened(t *testing.T, s *listenfd.Socket) {
	t.Helper()
	f := listenfd.FileOf(s)
	fl, fdfl := flags(t, f)
	if fl&unix.O_NONBLOCK != 0 {
		t.Errorf("%v is non-blocking", s)
	}
	if fdfl&unix.FD_CLOEXEC == 0 {
		t.Errorf("%v is not close-on-exec", s)
	}
	fd := int(f.Fd())
	typ, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	acc, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if stream := typ != unix.SOCK_DGRAM; (acc == 1) != stream {
		t.Errorf("%v: listening %v, type %d", s, acc == 1, typ)
	}
	if strings.HasPrefix(s.Network(), "tcp") {
		if on, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR); on == 0 {
			t.Errorf("%v: no SO_REUSEADDR", s)
		}
		if on, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT); on != 0 {
			t.Errorf("%v: SO_REUSEPORT", s)
		}
	}
}

// dial connects to s and closes the connection: the kernel completes it
// into the queue without an accept.
func dial(t *testing.T, network, addr string) {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	c.Close()
}

func TestOpenTCP(t *testing.T) {
	s := openT(t, "web", "tcp", "127.0.0.1:0")
	checkOpened(t, s)
	if s.Name() != "web" || s.Network() != "tcp" || !strings.HasPrefix(s.Addr(), "127.0.0.1:") || strings.HasSuffix(s.Addr(), ":0") {
		t.Fatalf("Open: %v: want the real port in Addr", s)
	}
	dial(t, "tcp", s.Addr())
	if got, want := s.String(), `listener "web" (tcp `+s.Addr()+`)`; got != want {
		t.Errorf("String: %q, want %q", got, want)
	}
	// The port is taken: SO_REUSEADDR lets no second listener in.
	_, err := listenfd.Open("again", "tcp4", s.Addr())
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.HasPrefix(err.Error(), `listener "again" (tcp4 `+s.Addr()+`): bind: `) {
		t.Errorf("a second Open of %s: %v", s.Addr(), err)
	}
}

func TestOpenIPv6AndDualStack(t *testing.T) {
	if fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0); err != nil {
		t.Skip("no IPv6 here:", err)
	} else {
		unix.Close(fd)
	}
	s6 := openT(t, "v6", "tcp6", "[::1]:0")
	checkOpened(t, s6)
	if !strings.HasPrefix(s6.Addr(), "[::1]:") {
		t.Errorf("tcp6 [::1]:0: Addr %q", s6.Addr())
	}
	dial(t, "tcp6", s6.Addr())
	// An empty host with "tcp": IPv6 and IPv4.
	s := openT(t, "any", "tcp", ":0")
	checkOpened(t, s)
	_, port, _ := strings.Cut(s.Addr(), "]:")
	if !strings.HasPrefix(s.Addr(), "[::]:") {
		t.Fatalf("tcp :0: Addr %q, want [::]:PORT", s.Addr())
	}
	dial(t, "tcp4", "127.0.0.1:"+port)
	dial(t, "tcp6", "[::1]:"+port)
}

func TestOpenUDP(t *testing.T) {
	s := openT(t, "dns", "udp", "127.0.0.1:0")
	checkOpened(t, s)
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || strings.HasSuffix(s.Addr(), ":0") {
		t.Errorf("udp: Addr %q", s.Addr())
	}
}

func TestOpenUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	s, err := listenfd.Open("admin", "unix", path)
	if err != nil {
		t.Fatal(err)
	}
	checkOpened(t, s)
	if s.Addr() != path {
		t.Errorf("Addr %q, want %q", s.Addr(), path)
	}
	dial(t, "unix", path)
	// A live socket is never replaced.
	_, err = listenfd.Open("again", "unix", path)
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "a process listens on it") {
		t.Errorf("a second Open of a live socket: %v", err)
	}
	dial(t, "unix", path)
	// Close removes the file it made.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("after Close: %v, want the file removed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

func TestOpenUnixStale(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	// What a SIGKILLed listener leaves: a socket file nobody listens on.
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	unix.Listen(fd, 1)
	unix.Close(fd)
	s := openT(t, "admin", "unix", path)
	dial(t, "unix", path)
	// Close leaves a file that replaced its own.
	os.Remove(path)
	if err := os.WriteFile(path, []byte("not mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if b, err := os.ReadFile(path); string(b) != "not mine" {
		t.Errorf("Close removed or changed a file it did not make: %q, %v", b, err)
	}
	// And Open never removes a file that is not a socket.
	_, err = listenfd.Open("admin", "unix", path)
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "not a socket; it is left alone") {
		t.Errorf("Open over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "not mine" {
		t.Errorf("Open changed a regular file: %q", b)
	}
}

// TestOpenUnixOtherType: a live socket of another type at the path is
// not taken for stale (its connect fails with EPROTOTYPE, not
// ECONNREFUSED).
func TestOpenUnixOtherType(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	openT(t, "dgram", "unixgram", path)
	_, err := listenfd.Open("stream", "unix", path)
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "a socket of another type is bound to it") {
		t.Errorf("Open over a live datagram socket: %v", err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("the datagram socket's file: %v", err)
	}
}

func TestOpenAbstract(t *testing.T) {
	name := "@multiexit-listenfd-test-" + t.Name()
	s := openT(t, "abstract", "unix", name)
	if s.Addr() != name {
		t.Errorf("Addr %q, want %q", s.Addr(), name)
	}
	dial(t, "unix", name)
}

func TestOpenErrors(t *testing.T) {
	for _, tc := range []struct{ name, network, address, want string }{
		{"a:b", "tcp", "127.0.0.1:0", `listener "a:b" (tcp 127.0.0.1:0): listener name "a:b": byte 1 (':') is not allowed`},
		{"", "tcp", "127.0.0.1:0", `listener "" (tcp 127.0.0.1:0): listener name "": must have 1 to 255 characters`},
		{"web", "sctp", "127.0.0.1:0", `listener "web" (sctp 127.0.0.1:0): unknown network "sctp"`},
		{"web", "tcp", "localhost:80", `listener "web" (tcp localhost:80): host "localhost" is not an IP address (names are not resolved)`},
		{"web", "tcp4", "[::1]:0", `listener "web" (tcp4 [::1]:0): ::1 is not an IPv4 address`},
		{"web", "tcp6", "127.0.0.1:0", `listener "web" (tcp6 127.0.0.1:0): 127.0.0.1 is not an IPv6 address`},
		{"web", "tcp", "127.0.0.1:99999", `listener "web" (tcp 127.0.0.1:99999): address "127.0.0.1:99999": port "99999" is not a number from 0 to 65535`},
		{"web", "tcp", "127.0.0.1:http", `listener "web" (tcp 127.0.0.1:http): address "127.0.0.1:http": port "http" is not a number`},
		{"web", "tcp", "127.0.0.1", `listener "web" (tcp 127.0.0.1): address "127.0.0.1": missing port`},
		{"web", "tcp", "::1:80", `listener "web" (tcp ::1:80): address "::1:80": an IPv6 address must be in brackets`},
		{"web", "tcp", "[fe80::1%eth0]:0", `listener "web" (tcp [fe80::1%eth0]:0): zone "eth0": only numeric zones`},
		{"web", "unix", "", `listener "web" (unix ): empty path`},
		{"web", "unix", "/nonexistent-dir/s.sock", `listener "web" (unix /nonexistent-dir/s.sock): bind: no such file or directory`},
	} {
		_, err := listenfd.Open(tc.name, tc.network, tc.address)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Open(%q, %q, %q): %v\nwant: %s...", tc.name, tc.network, tc.address, err, tc.want)
		}
	}
}

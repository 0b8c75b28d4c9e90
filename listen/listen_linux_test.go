package listen_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/multiexit/multiexit/internal/listenfd"
	"github.com/multiexit/multiexit/internal/proctest"
	"github.com/multiexit/multiexit/listen"
)

// The test binary is also the worker the tests start: TestMain runs the
// scenario named in LISTEN_TEST_SCENARIO instead of the tests.
const scenarioVar = "LISTEN_TEST_SCENARIO"

var scenarios = map[string]func(){"serve": serve, "wrongKind": wrongKind}

func TestMain(m *testing.M) {
	if name := os.Getenv(scenarioVar); name != "" {
		scenarios[name]()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m, proctest.IgnoreForkThread())
}

func say(format string, args ...any) { os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n") }

func fail(format string, args ...any) {
	say("error: "+format, args...)
	os.Exit(3)
}

// serve is a worker: it takes "web" and "admin" as net.Listeners and
// "dns" as a net.PacketConn, and serves one request on each.
func serve() {
	if err := listenfd.Receive(); err != nil { // multiexit's Install does this
		fail("Receive: %v", err)
	}
	web, err := listen.Listener("web")
	if err != nil {
		fail("%v", err)
	}
	admin, err := listen.Listener("admin")
	if err != nil {
		fail("%v", err)
	}
	dns, err := listen.PacketConn("dns")
	if err != nil {
		fail("%v", err)
	}
	names, err := listen.Names()
	say("ready %s %v %s %s %s", strings.Join(names, ","), err, web.Addr(), admin.Addr(), dns.LocalAddr())
	for _, l := range []net.Listener{web, admin} {
		c, err := l.Accept()
		if err != nil {
			fail("accept: %v", err)
		}
		fmt.Fprintf(c, "hello from %s %d\n", l.Addr(), os.Getpid())
		c.Close()
		l.Close()
	}
	buf := make([]byte, 64)
	n, from, err := dns.ReadFrom(buf)
	if err != nil {
		fail("read: %v", err)
	}
	dns.WriteTo(append([]byte("pong "), buf[:n]...), from)
	dns.Close()
}

// wrongKind asks for a stream socket as a PacketConn and the other way
// round.
func wrongKind() {
	listenfd.Receive()
	_, err := listen.Listener("dns")
	say("Listener(dns): %v", err)
	_, err = listen.PacketConn("web")
	say("PacketConn(web): %v", err)
	_, err = listen.Listener("nope")
	say("Listener(nope): %v", err)
}

// start hands web (tcp), admin (unix) and dns (udp) to the scenario and
// starts it.
func start(t *testing.T, scenario string) (*proctest.Proc, []*listenfd.Socket) {
	t.Helper()
	var socks []*listenfd.Socket
	for _, s := range [][3]string{{"web", "tcp", "127.0.0.1:0"}, {"admin", "unix", filepath.Join(t.TempDir(), "admin")}, {"dns", "udp", "127.0.0.1:0"}} {
		sock, err := listenfd.Open(s[0], s[1], s[2])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sock.Close() })
		socks = append(socks, sock)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), scenarioVar+"="+scenario)
	h, err := listenfd.Pass(cmd, socks, listenfd.GoWorker)
	if err != nil {
		t.Fatal(err)
	}
	p := proctest.Start(t, cmd, proctest.Options{Limit: time.Minute})
	if err := h.Started(nil); err != nil {
		t.Fatal(err)
	}
	return p, socks
}

func TestListenerAndPacketConn(t *testing.T) {
	p, socks := start(t, "serve")
	pid := p.Cmd.Process.Pid
	want := fmt.Sprintf("ready web,admin,dns <nil> %s %s %s", socks[0].Addr(), socks[1].Addr(), socks[2].Addr())
	if got := p.WaitFor("ready"); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	for _, s := range socks[:2] {
		c, err := net.Dial(map[string]string{"tcp": "tcp", "unix": "unix"}[s.Network()], s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if want := fmt.Sprintf("hello from %s %d\n", s.Addr(), pid); line != want {
			t.Errorf("%v: got %q, want %q", s, line, want)
		}
	}
	c, err := net.Dial("udp", socks[2].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if got := string(buf[:n]); got != "pong ping" || err != nil {
		t.Errorf("udp: got %q, %v", got, err)
	}
	_, how := p.End()
	p.Ended(how, "exit 0")
}

func TestWrongKind(t *testing.T) {
	p, _ := start(t, "wrongKind")
	lines, how := p.End()
	p.Ended(how, "exit 0")
	want := []string{
		`Listener(dns): listener "dns" is a datagram socket: use PacketConn`,
		`PacketConn(web): listener "web" is a listening stream socket: use Listener`,
		`Listener(nope): listener "nope": not passed (LISTEN_FDNAMES=web:admin:dns)`,
	}
	if len(lines) != len(want) {
		t.Fatalf("got %q", lines)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("got %q, want %q", lines[i], want[i])
		}
	}
}

// TestNothingPassed: in a process given no sockets every call says so.
func TestNothingPassed(t *testing.T) {
	for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		if old, ok := os.LookupEnv(v); ok {
			os.Unsetenv(v)
			t.Cleanup(func() { os.Setenv(v, old) })
		}
	}
	if _, err := listen.Listener("web"); err == nil || err.Error() != `listener "web": no descriptors were passed (LISTEN_FDS is not set)` {
		t.Errorf("Listener: %v", err)
	}
	if _, err := listen.PacketConn("dns"); err == nil || err.Error() != `listener "dns": no descriptors were passed (LISTEN_FDS is not set)` {
		t.Errorf("PacketConn: %v", err)
	}
	if names, err := listen.Names(); names != nil || err != nil {
		t.Errorf("Names: %q, %v", names, err)
	}
}

// TestReusePort: with ReusePort two sockets bind one address; without it
// the second gets EADDRINUSE.
func TestReusePort(t *testing.T) {
	lc := net.ListenConfig{Control: listen.ReusePort}
	a, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := lc.Listen(context.Background(), "tcp", a.Addr().String())
	if err != nil {
		t.Fatalf("a second SO_REUSEPORT listener on %s: %v", a.Addr(), err)
	}
	b.Close()
	if c, err := net.Listen("tcp", a.Addr().String()); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("without SO_REUSEPORT: %v", err)
		if c != nil {
			c.Close()
		}
	}
}

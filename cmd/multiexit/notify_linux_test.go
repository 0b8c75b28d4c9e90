package main_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// notify is the start of a Python program that sends systemd a
// notification the way sd_notify(3) does, to the NOTIFY_SOCKET it was
// given: notify(b"READY=1").
const notify = `import os, signal, socket, sys
a = os.environ["NOTIFY_SOCKET"]
def notify(msg):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(msg, "\0" + a[1:] if a[0] == "@" else a)
`

// notifier sends a notification, says which socket it sent it to, and
// exits when told to.
const notifier = notify + `notify(b"READY=1\nSTATUS=serving\nMAINPID=1")
print("sent to", a, flush=True)
sys.stdin.readline()`

// Under systemd, COMMAND's READY=1 and STATUS= reach systemd from
// multiexit (the unit's main process); MAINPID= does not.
func TestNotifyRelay(t *testing.T) {
	t.Parallel()
	systemd, sock, p := underSystemd(t, notifier)
	if line := p.WaitFor("sent to "); strings.HasSuffix(line, sock) {
		t.Errorf("COMMAND was given systemd's own socket: %q", line)
	}
	buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	n, oobn, _, _, err := systemd.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(buf[:n]), "READY=1\nSTATUS=serving"; got != want {
		t.Errorf("systemd got %q, want %q", got, want)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("no credentials: %v", err)
	}
	cred, err := unix.ParseUnixCredentials(&msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if int(cred.Pid) != p.Cmd.Process.Pid {
		t.Errorf("the notification came from pid %d, not from multiexit (pid %d)", cred.Pid, p.Cmd.Process.Pid)
	}
	p.say("done")
	p.check("exit 0")
}

// stubborn says it is ready, then ignores SIGTERM until told to go.
const stubborn = notify + `signal.signal(signal.SIGTERM, signal.SIG_IGN)
notify(b"READY=1")
print("ready", flush=True)
sys.stdin.readline()`

// Under systemd, SIGTERM to multiexit begins the stop at once: systemd is
// told STOPPING=1, and to wait (EXTEND_TIMEOUT_USEC), while COMMAND still
// runs.
func TestNotifyStoppingOnSignal(t *testing.T) {
	t.Parallel()
	systemd, _, p := underSystemd(t, stubborn)
	p.WaitFor("ready")
	buf := make([]byte, 4096)
	n, _, err := systemd.ReadFromUnix(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("systemd got %q (%v), want READY=1", buf[:n], err)
	}
	p.Signal(syscall.SIGTERM)
	// COMMAND ignores SIGTERM and runs on until told to go: the notice
	// must be multiexit's own, sent at the signal, not the library's,
	// sent once COMMAND has exited.
	n, _, err = systemd.ReadFromUnix(buf)
	if got := string(buf[:n]); err != nil || !strings.HasPrefix(got, "STOPPING=1\nEXTEND_TIMEOUT_USEC=") || !strings.Contains(got, "stopping COMMAND") {
		t.Errorf("systemd got %q (%v), want STOPPING=1 and EXTEND_TIMEOUT_USEC from multiexit at the signal", got, err)
	}
	p.say("go")
	p.check("exit 0")
}

// underSystemd runs the Python program script under multiexit, with a
// fake systemd's notify socket in NOTIFY_SOCKET: what multiexit tells
// systemd is read from systemd, with the sender's credentials.
func underSystemd(t *testing.T, script string) (systemd *net.UnixConn, sock string, p *prog) {
	t.Helper()
	py := python(t)
	sock = filepath.Join(t.TempDir(), "notify")
	systemd, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { systemd.Close() })
	rc, err := systemd.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1) })
	if err != nil {
		t.Fatal(err)
	}
	return systemd, sock, start(t, []string{"NOTIFY_SOCKET=" + sock}, "--", py, "-c", script)
}

// sockName is the NOTIFY_SOCKET COMMAND was given, as a sockaddr.
func sockName(t *testing.T, line string) *unix.SockaddrUnix {
	t.Helper()
	name := strings.TrimPrefix(line, "sent to ")
	name, _, _ = strings.Cut(name, " ")
	if strings.HasPrefix(name, "@") {
		name = "\x00" + name[1:]
	}
	return &unix.SockaddrUnix{Name: name}
}

// socketSayer says which notify socket it was given ("sent to NAME"), and
// at a line on its standard input sends READY=1 and STATUS=genuine.
const socketSayer = notify + `print("sent to", a, flush=True)
sys.stdin.readline()
notify(b"READY=1\nSTATUS=genuine")
print("sent", flush=True)
sys.stdin.readline()`

// The relay's socket is abstract: any process of the network namespace
// can send to it. What neither COMMAND nor its descendants sent is refused
// (with a log line) and does not reach systemd: a datagram from another
// user (nobody, who can read the name in /proc/net/unix), and one from an
// unrelated process of multiexit's own user (this test). COMMAND's own,
// sent after them, is the first thing systemd gets.
func TestNotifyRelayRefusesOutsiders(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv (util-linux)")
	}
	systemd, _, p := underSystemd(t, socketSayer)
	to := sockName(t, p.WaitFor("sent to "))
	// An unrelated process of the same user: this one.
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, []byte("STATUS=forged by the same user\nEXTEND_TIMEOUT_USEC=999999999"), 0, to); err != nil {
		t.Fatal(err)
	}
	// Another user.
	nobody := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python(t), "-c",
		`import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"STATUS=forged by nobody\nEXTEND_TIMEOUT_USEC=999999999", "\0" + sys.argv[1][1:])`, "@"+to.Name[1:])
	nobody.Dir = "/"
	if out, err := nobody.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", nobody.Args, err, out)
	}
	// Datagrams on one socket are read in the order they were sent.
	p.say("send")
	p.WaitFor("sent")
	buf := make([]byte, 4096)
	systemd.SetReadDeadline(time.Now().Add(limit))
	n, _, err := systemd.ReadFromUnix(buf)
	if got := string(buf[:n]); err != nil || got != "READY=1\nSTATUS=genuine" {
		t.Errorf("systemd got %q (%v) first, want COMMAND's READY=1 and STATUS=genuine", got, err)
	}
	p.say("done")
	p.check("exit 0")
	if n := strings.Count(p.Stderr.String(), "refused a notification from a process outside COMMAND's tree"); n != 2 {
		t.Errorf("multiexit logged %d refusals, want 2; stderr:\n%s", n, p.Stderr.String())
	}
}

// A descendant of COMMAND is of its tree whatever its user: one that
// dropped its privileges (setpriv, as a service's helper does) is heard.
// (It waits until systemd got its datagram: a sender of another user
// than multiexit's that is gone, reaped, when the relay reads it cannot be
// placed, and is refused.)
func TestNotifyRelayHearsDescendants(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv (util-linux)")
	}
	systemd, _, p := underSystemd(t, notify+`import subprocess
subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
    "import os, socket, sys; a = os.environ['NOTIFY_SOCKET']; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'STATUS=from nobody, a descendant', '\\0' + a[1:]); print('sent', flush=True); sys.stdin.readline()"],
    cwd="/", check=True)`)
	p.WaitFor("sent")
	buf := make([]byte, 4096)
	systemd.SetReadDeadline(time.Now().Add(limit))
	n, _, err := systemd.ReadFromUnix(buf)
	if got := string(buf[:n]); err != nil || got != "STATUS=from nobody, a descendant" {
		t.Errorf("systemd got %q (%v)", got, err)
	}
	p.say("done")
	p.check("exit 0")
}

func init() {
	roles["watchdog"] = func() int {
		d, err := daemon.SdWatchdogEnabled(false)
		fmt.Printf("watchdog %v %v pid=%s usec=%s\n", d, err, os.Getenv("WATCHDOG_PID"), os.Getenv("WATCHDOG_USEC"))
		if d == 0 {
			return 1
		}
		if ok, err := daemon.SdNotify(false, daemon.SdNotifyWatchdog); !ok || err != nil {
			fmt.Println("notify:", ok, err)
			return 1
		}
		fmt.Println("pinged")
		bufio.NewReader(os.Stdin).ReadString('\n') // until systemd got it
		return 0
	}
}

// Under a unit with WatchdogSec=, systemd gives the main process (here
// multiexit) WATCHDOG_USEC, and WATCHDOG_PID naming it. COMMAND, which
// does the service's work, takes the watchdog for its own (go-systemd's
// SdWatchdogEnabled, as sd_watchdog_enabled(3)), and its WATCHDOG=1
// reaches systemd from multiexit, as READY=1 does.
func TestNotifyWatchdog(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "notify")
	systemd, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer systemd.Close()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// systemd names the main process: multiexit, which sh executes.
	p := startProgram(t, []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=30000000", "MX_TEST_ROLE=watchdog"},
		"sh", "-c", `WATCHDOG_PID=$$ exec "$@"`, "sh", bin, "--", self)
	line := p.WaitFor("watchdog ")
	if !strings.HasPrefix(line, "watchdog 30s <nil>") {
		t.Errorf("COMMAND says %q: the watchdog is not its own", line)
	}
	buf := make([]byte, 4096)
	systemd.SetReadDeadline(time.Now().Add(limit))
	n, _, err := systemd.ReadFromUnix(buf)
	if got := string(buf[:n]); err != nil || got != "WATCHDOG=1" {
		t.Errorf("systemd got %q (%v), want WATCHDOG=1", got, err)
	}
	p.say("done")
	p.Rest()
	p.check("exit 0")
}

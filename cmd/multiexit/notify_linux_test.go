package main_test

import (
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

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
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
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
	return systemd, sock, start(t, []string{"NOTIFY_SOCKET=" + sock}, "--", "python3", "-c", script)
}

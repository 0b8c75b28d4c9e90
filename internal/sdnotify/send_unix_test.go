//go:build unix

package sdnotify_test

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/multiexit/multiexit/internal/proctest"
	"github.com/multiexit/multiexit/internal/sdnotify"
)

// notifyLimit guards the reads of the fake notify socket against a hang.
const notifyLimit = 30 * time.Second

func TestReady(t *testing.T) {
	ns := proctest.ListenNotify(t)
	t.Setenv("NOTIFY_SOCKET", ns.Path)
	if !sdnotify.Enabled() {
		t.Error("Enabled() = false with NOTIFY_SOCKET set")
	}
	if err := sdnotify.Ready(); err != nil {
		t.Fatal(err)
	}
	if got := ns.Next(t, notifyLimit); got != "READY=1" {
		t.Errorf("Ready sent %q, want READY=1", got)
	}
	if os.Getenv("NOTIFY_SOCKET") != ns.Path {
		t.Error("Ready changed NOTIFY_SOCKET in this process's environment")
	}
}

// The error names the variable and the socket.
func TestSendSocketGone(t *testing.T) {
	addr := t.TempDir() + "/nobody-listens"
	t.Setenv("NOTIFY_SOCKET", addr)
	err := sdnotify.Send("READY=1")
	if err == nil || !strings.Contains(err.Error(), "NOTIFY_SOCKET="+addr) {
		t.Errorf("Send to a socket nobody listens on: %v, want an error naming NOTIFY_SOCKET=%s", err, addr)
	}
}

func TestStoppingAndStatus(t *testing.T) {
	ns := proctest.ListenNotify(t)
	t.Setenv("NOTIFY_SOCKET", ns.Path)
	if err := sdnotify.Stopping(21*time.Second+500*time.Microsecond, "going"); err != nil {
		t.Fatal(err)
	}
	if err := sdnotify.Stopping(time.Second, ""); err != nil {
		t.Fatal(err)
	}
	if err := sdnotify.Status("stopping 3 children"); err != nil {
		t.Fatal(err)
	}
	for _, want := range [][]string{
		{"STOPPING=1", "EXTEND_TIMEOUT_USEC=21000500", "STATUS=going"},
		{"STOPPING=1", "EXTEND_TIMEOUT_USEC=1000000"},
		{"STATUS=stopping 3 children"},
	} {
		if d := cmp.Diff(want, strings.Split(ns.Next(t, notifyLimit), "\n")); d != "" {
			t.Errorf("(-want +got):\n%s", d)
		}
	}
}

// Without NOTIFY_SOCKET nothing is sent, nothing fails, and Stopping and
// Status cost no allocation (they run in every worker's shutdown).
func TestWithoutSocket(t *testing.T) {
	ns := proctest.ListenNotify(t) // exists, but nobody is told about it
	unsetenv(t, "NOTIFY_SOCKET")
	if sdnotify.Enabled() {
		t.Error("Enabled() without NOTIFY_SOCKET")
	}
	if err := sdnotify.Ready(); err != nil {
		t.Errorf("Ready without NOTIFY_SOCKET: %v", err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		sdnotify.Stopping(20*time.Second, "stopping")
		sdnotify.Status("stopping")
	})
	if allocs != 0 {
		t.Errorf("Stopping and Status without NOTIFY_SOCKET: %v allocations, want 0", allocs)
	}
	// A message sent now comes first if nothing was sent before.
	t.Setenv("NOTIFY_SOCKET", ns.Path)
	sdnotify.Status("marker")
	if got := ns.Next(t, notifyLimit); got != "STATUS=marker" {
		t.Errorf("something was sent without NOTIFY_SOCKET: first message %q", got)
	}
}

// A Sender's socket is not inherited by a child.
func TestSenderCloseOnExec(t *testing.T) {
	ns := proctest.ListenNotify(t)
	s, err := sdnotify.Open(ns.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Addr() != ns.Path {
		t.Errorf("Addr() = %q, want %q", s.Addr(), ns.Path)
	}
	if err := s.Send([]byte("WATCHDOG=1")); err != nil {
		t.Fatal(err)
	}
	if got := ns.Next(t, notifyLimit); got != "WATCHDOG=1" {
		t.Errorf("got %q", got)
	}
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("no /proc/self/fd to list a child's descriptors:", err)
	}
	cmd := exec.Command("sh", "-c", "ls /proc/self/fd")
	cmd.Env = append(os.Environ(), proctest.Env(proctest.Tag(t)))
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	fd := sdnotify.FD(s)
	if slices.Contains(strings.Fields(string(out)), strconv.Itoa(fd)) {
		t.Errorf("the child inherited the Sender's socket (descriptor %d): %s", fd, out)
	}
}

// A real client, systemd-notify, sends BARRIER=1 with a descriptor and
// waits until it is closed: the fake socket must close it.
func TestSocketBarrier(t *testing.T) {
	exe, err := exec.LookPath("systemd-notify")
	if err != nil {
		t.Skip("systemd-notify is not installed")
	}
	ns := proctest.ListenNotify(t)
	cmd := exec.Command(exe, "--ready", "STATUS=up")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+ns.Path, proctest.Env(proctest.Tag(t)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("systemd-notify: %v\n%s", err, out)
	}
	got := ns.Until(t, "READY=1", notifyLimit)
	if !slices.ContainsFunc(got, func(m string) bool { return strings.Contains(m, "STATUS=up") }) {
		t.Errorf("messages: %q", got)
	}
}

//go:build unix

package multiexit

import (
	"os"
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

// unsetenv removes name from the environment for the test (t.Setenv
// cannot unset).
func unsetenv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "") // restores the old value after the test
	os.Unsetenv(name)
}

func TestReady(t *testing.T) {
	ns := proctest.ListenNotify(t)
	t.Setenv("NOTIFY_SOCKET", ns.Path)
	if err := Ready(); err != nil {
		t.Fatal(err)
	}
	if got := ns.Next(t, notifyLimit); got != "READY=1" {
		t.Errorf("Ready sent %q, want READY=1", got)
	}
	if os.Getenv("NOTIFY_SOCKET") != ns.Path {
		t.Error("Ready changed NOTIFY_SOCKET in this process's environment")
	}
}

func TestReadySocketGone(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", t.TempDir()+"/nobody-listens")
	if err := Ready(); err == nil {
		t.Error("Ready to a socket nobody listens on returned nil")
	}
}

func TestNotifyStopping(t *testing.T) {
	ns := proctest.ListenNotify(t)
	t.Setenv("NOTIFY_SOCKET", ns.Path)
	notifyStopping(20 * time.Second)
	lines := strings.Split(ns.Next(t, notifyLimit), "\n")
	want := []string{
		"STOPPING=1",
		"EXTEND_TIMEOUT_USEC=" + strconv.FormatInt((20*time.Second+stopMargin).Microseconds(), 10),
		"STATUS=multiexit: shutting down (deadline 20s)",
	}
	if d := cmp.Diff(want, lines); d != "" {
		t.Errorf("notifyStopping (-want +got):\n%s", d)
	}
}

// Without NOTIFY_SOCKET nothing is sent, nothing fails, and the stop's
// notifications cost no allocation (they run in every worker's shutdown).
func TestNotifyWithoutSocket(t *testing.T) {
	ns := proctest.ListenNotify(t) // exists, but nobody is told about it
	unsetenv(t, "NOTIFY_SOCKET")
	if err := Ready(); err != nil {
		t.Errorf("Ready without NOTIFY_SOCKET: %v", err)
	}
	if sdnotify.Enabled() {
		t.Error("sdnotify.Enabled() without NOTIFY_SOCKET")
	}
	allocs := testing.AllocsPerRun(100, func() {
		notifyStopping(20 * time.Second)
		sdnotify.Status("running the exit hooks")
	})
	if allocs != 0 {
		t.Errorf("notifyStopping and sdnotify.Status without NOTIFY_SOCKET: %v allocations, want 0", allocs)
	}
	// A message sent now comes first if nothing was sent before.
	t.Setenv("NOTIFY_SOCKET", ns.Path)
	sdnotify.Status("marker")
	if got := ns.Next(t, notifyLimit); got != "STATUS=marker" {
		t.Errorf("something was sent without NOTIFY_SOCKET: first message %q", got)
	}
}

// The guardian gets none of this process's service-manager variables, nor
// multiexit's own, whatever their values; the rest it keeps.
func TestGuardianEnv(t *testing.T) {
	for kv := range strings.SplitSeq("NOTIFY_SOCKET=/run/systemd/notify LISTEN_FDS=2 LISTEN_PID=1 LISTEN_FDNAMES=http WATCHDOG_PID=1 WATCHDOG_USEC=30000000 MULTIEXIT_CONTAINMENT=subreaper MX_KEEP=1", " ") {
		name, value, _ := strings.Cut(kv, "=")
		t.Setenv(name, value)
	}
	env := guardianEnv()
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if sdnotify.IsVar(name) || strings.HasPrefix(name, "MULTIEXIT") {
			t.Errorf("the guardian gets %s", kv)
		}
	}
	if !slices.Contains(env, "MX_KEEP=1") || !slices.Contains(env, "PATH="+os.Getenv("PATH")) {
		t.Errorf("the guardian lost the rest: %q", env)
	}
}

func BenchmarkNotifyStoppingWithoutSocket(b *testing.B) {
	b.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	b.ReportAllocs()
	for b.Loop() {
		notifyStopping(20 * time.Second)
	}
}

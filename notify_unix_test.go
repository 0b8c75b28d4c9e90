//go:build unix

package multiexit

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
	notifyStatus("stopping 3 children")
	lines := strings.Split(ns.Next(t, notifyLimit), "\n")
	want := []string{
		"STOPPING=1",
		"EXTEND_TIMEOUT_USEC=" + strconv.FormatInt((20*time.Second+stopMargin).Microseconds(), 10),
		"STATUS=multiexit: shutting down (deadline 20s)",
	}
	if d := cmp.Diff(want, lines); d != "" {
		t.Errorf("notifyStopping (-want +got):\n%s", d)
	}
	if got := ns.Next(t, notifyLimit); got != "STATUS=stopping 3 children" {
		t.Errorf("notifyStatus sent %q", got)
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
	if notifying() {
		t.Error("notifying() without NOTIFY_SOCKET")
	}
	allocs := testing.AllocsPerRun(100, func() {
		notifyStopping(20 * time.Second)
		notifyStatus("stopping")
	})
	if allocs != 0 {
		t.Errorf("notifyStopping and notifyStatus without NOTIFY_SOCKET: %v allocations, want 0", allocs)
	}
	// A message sent now comes first if nothing was sent before.
	t.Setenv("NOTIFY_SOCKET", ns.Path)
	notifyStatus("marker")
	if got := ns.Next(t, notifyLimit); got != "STATUS=marker" {
		t.Errorf("something was sent without NOTIFY_SOCKET: first message %q", got)
	}
}

// A real client, systemd-notify, sends BARRIER=1 with a descriptor and
// waits until it is closed: the fake socket must close it.
func TestNotifySocketBarrier(t *testing.T) {
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

func TestScrubEngineEnv(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	t.Setenv("LISTEN_FDS", "2")
	t.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	t.Setenv("LISTEN_FDNAMES", "http:https")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	t.Setenv("WATCHDOG_USEC", "30000000")
	own := []string{
		"NOTIFY_SOCKET=/run/systemd/notify",
		"LISTEN_FDS=2",
		"LISTEN_PID=" + strconv.Itoa(os.Getpid()),
		"LISTEN_FDNAMES=http:https",
		"WATCHDOG_PID=" + strconv.Itoa(os.Getpid()),
		"WATCHDOG_USEC=30000000",
	}
	for _, tc := range []struct {
		name    string
		in, out []string
	}{
		{"only ours", own, []string{}},
		{"kept around", append([]string{"A=1"}, append(slices.Clone(own[:2]), append([]string{"B=2"}, own[2:]...)...)...), []string{"A=1", "B=2"}},
		{"the caller's own values stay", []string{"NOTIFY_SOCKET=/tmp/proxy", "LISTEN_FDS=1", "LISTEN_PID=1234", "LISTEN_FDNAMES=x", "PATH=/bin"},
			[]string{"NOTIFY_SOCKET=/tmp/proxy", "LISTEN_FDS=1", "LISTEN_PID=1234", "LISTEN_FDNAMES=x", "PATH=/bin"}},
		{"a prefix is not the name", []string{"NOTIFY_SOCKETX=/run/systemd/notify", "XLISTEN_FDS=2"}, []string{"NOTIFY_SOCKETX=/run/systemd/notify", "XLISTEN_FDS=2"}},
		{"empty", []string{}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.in)
			got := scrubEngineEnv(in)
			if d := cmp.Diff(tc.out, got); d != "" {
				t.Errorf("scrubEngineEnv (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.in, in); d != "" {
				t.Errorf("scrubEngineEnv changed its input (-before +after):\n%s", d)
			}
		})
	}
	t.Run("nil is this process's environment", func(t *testing.T) {
		got := scrubEngineEnv(nil)
		for _, kv := range got {
			if slices.Contains(own, kv) {
				t.Errorf("%s kept", kv)
			}
		}
		if !slices.Contains(got, "PATH="+os.Getenv("PATH")) {
			t.Errorf("PATH lost: %q", got)
		}
		if os.Getenv("NOTIFY_SOCKET") == "" || os.Getenv("LISTEN_FDS") == "" {
			t.Error("scrubEngineEnv changed this process's environment")
		}
	})
}

// Without the variables, scrubEngineEnv returns its input: nothing to copy.
func TestScrubEngineEnvNothingToDo(t *testing.T) {
	for _, name := range []string{"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_PID", "WATCHDOG_USEC"} {
		unsetenv(t, name)
	}
	env := []string{"A=1", "NOTIFY_SOCKET=/tmp/proxy"}
	if got := scrubEngineEnv(env); &got[0] != &env[0] || len(got) != 2 {
		t.Errorf("scrubEngineEnv made a copy or dropped: %q", got)
	}
	if got := scrubEngineEnv(nil); got != nil {
		t.Errorf("scrubEngineEnv(nil) = %q, want nil", got)
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
		if slices.Contains(engineVars[:], name) || strings.HasPrefix(name, "MULTIEXIT") {
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

package sdnotify_test

import (
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/multiexit/multiexit/internal/proctest"
	"github.com/multiexit/multiexit/internal/sdnotify"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, proctest.IgnoreForkThread()) }

// unsetenv removes name from the environment for the test (t.Setenv
// cannot unset).
func unsetenv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "") // restores the old value after the test
	os.Unsetenv(name)
}

func TestIsVar(t *testing.T) {
	for _, name := range []string{"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_PID", "WATCHDOG_USEC"} {
		if !sdnotify.IsVar(name) {
			t.Errorf("IsVar(%q) = false", name)
		}
	}
	for _, name := range []string{"", "NOTIFY_SOCKETX", "XLISTEN_FDS", "notify_socket", "MULTIEXIT", "PATH"} {
		if sdnotify.IsVar(name) {
			t.Errorf("IsVar(%q) = true", name)
		}
	}
}

// A relayed child gets the relay's socket, in place of any other, and no
// WATCHDOG_PID (which names the relay); the rest, WATCHDOG_USEC included,
// stays in order.
func TestRelayEnv(t *testing.T) {
	in := []string{"A=1", "NOTIFY_SOCKET=/run/systemd/notify", "WATCHDOG_PID=42", "WATCHDOG_USEC=30000000", "NOTIFY_SOCKETX=keep", "WATCHDOG_PIDX=keep", "B=2"}
	before := slices.Clone(in)
	got := sdnotify.RelayEnv(in, "@relay")
	want := []string{"A=1", "WATCHDOG_USEC=30000000", "NOTIFY_SOCKETX=keep", "WATCHDOG_PIDX=keep", "B=2", "NOTIFY_SOCKET=@relay"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("RelayEnv (-want +got):\n%s", d)
	}
	if d := cmp.Diff(before, in); d != "" {
		t.Errorf("RelayEnv changed its input (-before +after):\n%s", d)
	}
}

func TestScrubEnv(t *testing.T) {
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
			got := sdnotify.ScrubEnv(in)
			if d := cmp.Diff(tc.out, got); d != "" {
				t.Errorf("sdnotify.ScrubEnv (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.in, in); d != "" {
				t.Errorf("sdnotify.ScrubEnv changed its input (-before +after):\n%s", d)
			}
		})
	}
	t.Run("nil is this process's environment", func(t *testing.T) {
		got := sdnotify.ScrubEnv(nil)
		for _, kv := range got {
			if slices.Contains(own, kv) {
				t.Errorf("%s kept", kv)
			}
		}
		if !slices.Contains(got, "PATH="+os.Getenv("PATH")) {
			t.Errorf("PATH lost: %q", got)
		}
		if os.Getenv("NOTIFY_SOCKET") == "" || os.Getenv("LISTEN_FDS") == "" {
			t.Error("sdnotify.ScrubEnv changed this process's environment")
		}
	})
}

// A caller that took this process's WATCHDOG_PID out of a child's
// environment hands it the watchdog (as RelayEnv does): WATCHDOG_USEC
// stays. With WATCHDOG_PID, or when this process has none, it goes.
func TestScrubEnvWatchdogHandedOver(t *testing.T) {
	pid := "WATCHDOG_PID=" + strconv.Itoa(os.Getpid())
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	t.Setenv("WATCHDOG_USEC", "30000000")
	for _, tc := range []struct {
		name    string
		in, out []string
	}{
		{"inherited as a pair", []string{"A=1", pid, "WATCHDOG_USEC=30000000", "NOTIFY_SOCKET=/run/systemd/notify"}, []string{"A=1"}},
		{"handed over by a relay", sdnotify.RelayEnv([]string{"A=1", pid, "WATCHDOG_USEC=30000000", "NOTIFY_SOCKET=/run/systemd/notify"}, "@relay"),
			[]string{"A=1", "WATCHDOG_USEC=30000000", "NOTIFY_SOCKET=@relay"}},
		{"another process's WATCHDOG_PID", []string{"WATCHDOG_PID=1", "WATCHDOG_USEC=30000000"}, []string{"WATCHDOG_PID=1", "WATCHDOG_USEC=30000000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.out, sdnotify.ScrubEnv(tc.in)); d != "" {
				t.Errorf("ScrubEnv (-want +got):\n%s", d)
			}
		})
	}
	t.Run("no WATCHDOG_PID here", func(t *testing.T) {
		unsetenv(t, "WATCHDOG_PID")
		got := sdnotify.ScrubEnv([]string{"A=1", "WATCHDOG_USEC=30000000"})
		if d := cmp.Diff([]string{"A=1"}, got); d != "" {
			t.Errorf("ScrubEnv (-want +got):\n%s", d)
		}
	})
}

// Without the variables, ScrubEnv returns its input: nothing to copy.
func TestScrubEnvNothingToDo(t *testing.T) {
	for _, name := range []string{"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_PID", "WATCHDOG_USEC"} {
		unsetenv(t, name)
	}
	env := []string{"A=1", "NOTIFY_SOCKET=/tmp/proxy"}
	if got := sdnotify.ScrubEnv(env); &got[0] != &env[0] || len(got) != 2 {
		t.Errorf("sdnotify.ScrubEnv made a copy or dropped: %q", got)
	}
	if got := sdnotify.ScrubEnv(nil); got != nil {
		t.Errorf("sdnotify.ScrubEnv(nil) = %q, want nil", got)
	}
}

//go:build unix

package sdnotify_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/multiexit/multiexit/internal/proctest"
	"github.com/multiexit/multiexit/internal/sdnotify"
)

func monotonicUsec(t *testing.T) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

// Reloading sends, in one datagram, RELOADING=1, MONOTONIC_USEC= read on
// CLOCK_MONOTONIC at the call (systemd's notify-reload ignores RELOADING=1
// whose timestamp is before its own reload began, or missing) and STATUS=;
// Reloaded sends READY=1 and STATUS=.
func TestReloadingMessages(t *testing.T) {
	ns := proctest.ListenNotify(t)
	t.Setenv("NOTIFY_SOCKET", ns.Path)
	before := monotonicUsec(t)
	if err := sdnotify.Reloading("reloading: generation 2"); err != nil {
		t.Fatal(err)
	}
	after := monotonicUsec(t)
	lines := strings.Split(ns.Next(t, 10*time.Second), "\n")
	if len(lines) != 3 || lines[0] != "RELOADING=1" || lines[2] != "STATUS=reloading: generation 2" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("Reloading sent %q", lines)
	}
	usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil || usec < before || usec > after {
		t.Errorf("MONOTONIC_USEC=%d (%v), want CLOCK_MONOTONIC between %d and %d", usec, err, before, after)
	}
	if err := sdnotify.Reloaded("generation 2 serving"); err != nil {
		t.Fatal(err)
	}
	if got := ns.Next(t, 10*time.Second); got != "READY=1\nSTATUS=generation 2 serving" {
		t.Errorf("Reloaded sent %q", got)
	}
}

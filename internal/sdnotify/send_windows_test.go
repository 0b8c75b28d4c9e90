package sdnotify_test

import (
	"errors"
	"testing"
	"time"

	"github.com/multiexit/multiexit/internal/sdnotify"
)

// Windows has no service manager that reads NOTIFY_SOCKET: nothing is
// enabled, Stopping and Status do nothing, and a Send with the variable
// set says it is unsupported.
func TestWindows(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", `\\.\pipe\nobody`)
	if sdnotify.Enabled() {
		t.Error("Enabled() on Windows")
	}
	if err := sdnotify.Stopping(time.Second, "x"); err != nil {
		t.Errorf("Stopping: %v", err)
	}
	if err := sdnotify.Send("READY=1"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Send = %v, want errors.ErrUnsupported", err)
	}
	if _, err := sdnotify.Open("x"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Open = %v, want errors.ErrUnsupported", err)
	}
	unsetenv(t, "NOTIFY_SOCKET")
	if err := sdnotify.Ready(); err != nil {
		t.Errorf("Ready without NOTIFY_SOCKET: %v", err)
	}
}

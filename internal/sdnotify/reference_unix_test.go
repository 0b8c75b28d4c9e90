//go:build unix

package sdnotify_test

import (
	"net"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/google/go-cmp/cmp"

	"github.com/multiexit/multiexit/internal/proctest"
	"github.com/multiexit/multiexit/internal/sdnotify"
)

// TestSendMatchesGoSystemd holds the hand-written sender (Send, and a Sender)
// against github.com/coreos/go-systemd/v22/daemon, the reference
// implementation of the protocol: for every message, through a socket path
// and (on Linux) an abstract socket, the socket receives the same datagram
// from both.
func TestSendMatchesGoSystemd(t *testing.T) {
	states := []string{
		daemon.SdNotifyReady,
		daemon.SdNotifyStopping + "\nEXTEND_TIMEOUT_USEC=6000000\nSTATUS=multiexit: shutting down",
		"STATUS=",
		"STATUS=" + string(make([]byte, 3000)), // long, with NUL bytes
	}
	sockets := map[string]func(t *testing.T) (addr string, next func() string){
		"path": func(t *testing.T) (string, func() string) {
			ns := proctest.ListenNotify(t)
			return ns.Path, func() string { return ns.Next(t, notifyLimit) }
		},
	}
	if runtime.GOOS == "linux" {
		sockets["abstract"] = func(t *testing.T) (string, func() string) {
			name := "@multiexit-test-" + filepath.Base(t.TempDir())
			conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			buf := make([]byte, 8192)
			return name, func() string {
				n, err := conn.Read(buf)
				if err != nil {
					t.Fatal(err)
				}
				return string(buf[:n])
			}
		}
	}
	for kind, listen := range sockets {
		t.Run(kind, func(t *testing.T) {
			addr, next := listen(t)
			t.Setenv("NOTIFY_SOCKET", addr)
			sender, err := sdnotify.Open(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer sender.Close()
			for _, state := range states {
				if sent, err := daemon.SdNotify(false, state); !sent || err != nil {
					t.Fatalf("daemon.SdNotify(%.20q) = %v, %v", state, sent, err)
				}
				ref := next()
				if err := sdnotify.Send(state); err != nil {
					t.Fatalf("sdnotify.Send(%.20q): %v", state, err)
				}
				if ours := next(); ours != ref {
					t.Errorf("sdnotify.Send and go-systemd sent different datagrams for %.20q (-go-systemd +ours):\n%s", state, cmp.Diff(ref, ours))
				}
				if err := sender.Send([]byte(state)); err != nil {
					t.Fatalf("Sender.Send(%.20q): %v", state, err)
				}
				if ours := next(); ours != ref {
					t.Errorf("a Sender and go-systemd sent different datagrams for %.20q (-go-systemd +ours):\n%s", state, cmp.Diff(ref, ours))
				}
			}
		})
	}
	t.Run("unset", func(t *testing.T) {
		unsetenv(t, "NOTIFY_SOCKET")
		if err := sdnotify.Send(daemon.SdNotifyReady); err != nil {
			t.Errorf("without NOTIFY_SOCKET Send = %v, want nil", err)
		}
	})
	t.Run("no listener", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "none"))
		if err := sdnotify.Send(daemon.SdNotifyReady); err == nil {
			t.Error("sdnotify.Send to a socket nobody listens on returned nil")
		}
	})
}

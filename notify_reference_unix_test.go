//go:build unix

package multiexit

import (
	"net"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/google/go-cmp/cmp"

	"github.com/multiexit/multiexit/internal/proctest"
)

// TestSdNotifyMatchesGoSystemd holds the hand-written sender (see sdNotify)
// against github.com/coreos/go-systemd/v22/daemon, the reference
// implementation of the protocol: for every message, through a socket path
// and (on Linux) an abstract socket, the socket receives the same datagram
// from both.
func TestSdNotifyMatchesGoSystemd(t *testing.T) {
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
			for _, state := range states {
				if err := sdNotify(state); err != nil {
					t.Fatalf("sdNotify(%.20q): %v", state, err)
				}
				ours := next()
				if sent, err := daemon.SdNotify(false, state); !sent || err != nil {
					t.Fatalf("daemon.SdNotify(%.20q) = %v, %v", state, sent, err)
				}
				if ref := next(); ours != ref {
					t.Errorf("sdNotify and go-systemd sent different datagrams for %.20q (-go-systemd +ours):\n%s", state, cmp.Diff(ref, ours))
				}
			}
		})
	}
	t.Run("unset", func(t *testing.T) {
		unsetenv(t, "NOTIFY_SOCKET")
		if err := sdNotify(daemon.SdNotifyReady); err != nil {
			t.Errorf("without NOTIFY_SOCKET sdNotify = %v, want nil", err)
		}
	})
	t.Run("no listener", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "none"))
		if err := sdNotify(daemon.SdNotifyReady); err == nil {
			t.Error("sdNotify to a socket nobody listens on returned nil")
		}
	})
}

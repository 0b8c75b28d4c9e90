//go:build unix

package proctest

import (
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// NotifySocket is a fake service manager's notify socket (sd_notify(3)):
// a datagram socket in the test's temporary directory. Point NOTIFY_SOCKET
// at Path and read the messages with Next.
type NotifySocket struct {
	Path string
	msgs chan string
}

// ListenNotify opens a NotifySocket that t's cleanup closes. It closes
// every descriptor a message carries: systemd-notify sends BARRIER=1 with
// one and waits for the socket's owner to close it.
func ListenNotify(t testing.TB) *NotifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &NotifySocket{Path: path, msgs: make(chan string, 64)}
	done, stop := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer close(n.msgs)
		buf, oob := make([]byte, 4096), make([]byte, 1024)
		for {
			k, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
			if err != nil {
				return
			}
			closeRights(oob[:oobn])
			select {
			case n.msgs <- string(buf[:k]):
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		conn.Close()
		<-done
	})
	return n
}

func closeRights(oob []byte) {
	cms, _ := syscall.ParseSocketControlMessage(oob)
	for _, cm := range cms {
		fds, _ := syscall.ParseUnixRights(&cm)
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}
}

// Next returns the next message, or fails t if none comes within limit (a
// guard against a hang, not a timing claim).
func (n *NotifySocket) Next(t testing.TB, limit time.Duration) string {
	t.Helper()
	select {
	case m, ok := <-n.msgs:
		if !ok {
			t.Fatal("notify socket closed")
		}
		return m
	case <-time.After(limit):
		t.Fatalf("no message on the notify socket within %v", limit)
		return ""
	}
}

// Until returns the messages up to and including the first that holds
// the line want ("READY=1", "STOPPING=1"), or fails t after limit.
func (n *NotifySocket) Until(t testing.TB, want string, limit time.Duration) []string {
	t.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	var got []string
	for {
		select {
		case m, ok := <-n.msgs:
			if !ok {
				t.Fatalf("notify socket closed; messages so far: %q", got)
			}
			got = append(got, m)
			for _, l := range strings.Split(m, "\n") {
				if l == want {
					return got
				}
			}
		case <-deadline.C:
			t.Fatalf("no %q on the notify socket within %v; messages: %q", want, limit, got)
			return nil
		}
	}
}

// Messages is the channel the messages arrive on, in order; it is closed
// when the socket is.
func (n *NotifySocket) Messages() <-chan string { return n.msgs }

// Pending returns the messages already received, without waiting.
func (n *NotifySocket) Pending() []string {
	var got []string
	for {
		select {
		case m, ok := <-n.msgs:
			if !ok {
				return got
			}
			got = append(got, m)
		default:
			return got
		}
	}
}

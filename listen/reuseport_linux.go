package listen

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// ReusePort is a net.ListenConfig Control function that sets SO_REUSEPORT
// before bind, for workers that each open their own socket on one address
// instead of sharing the parent's:
//
//	lc := net.ListenConfig{Control: listen.ReusePort}
//	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:8080")
//
// The shared socket that the parent hands down (File, Listener) is the
// default, and the better choice for most pools; know these caveats
// before choosing this instead:
//
//   - Each socket has its own accept queue, and the kernel hashes each new
//     connection onto one of them. When a worker closes its socket — it
//     crashed, stopped, or is being replaced — the connections waiting in
//     its queue are reset, unless net.ipv4.tcp_migrate_req=1 (Linux 5.14
//     and later) migrates them to a sibling. With the shared socket none
//     is lost: the queue belongs to the socket, which outlives any worker.
//   - The distribution is by hash, not by load: a stalled worker keeps
//     receiving its share.
//   - The backlog is per socket, so it multiplies by the number of workers.
//   - Any process of the same effective user can join the group and
//     receive a share of the connections.
//   - The parent must not hold a socket of the group without accepting on
//     it: its share would wait forever. (So multiexit never sets it on the
//     sockets it opens.)
//
// Linux only; elsewhere it returns an error (the BSDs' SO_REUSEPORT does
// not balance, and FreeBSD's SO_REUSEPORT_LB is not offered).
func ReusePort(network, address string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt SO_REUSEPORT", serr)
}

// Package listenfd holds listening sockets and hands them down in the
// systemd format (sd_listen_fds(3)): the descriptors from 3 on, LISTEN_FDS,
// LISTEN_FDNAMES, and LISTEN_PID naming the receiving process itself.
//
// One concern, four parts:
//
//   - A parent opens a named socket from a network and an address ([Open]),
//     or adopts one that systemd passed it ([Adopt], [Passed.Socket]).
//   - It prepares a command to receive its sockets ([Pass]): descriptors
//     3..3+n-1 before the command's own ExtraFiles, the variables, and a way
//     for the child to learn its own PID into LISTEN_PID, which os/exec
//     cannot write since it runs no code between fork and exec: a Go worker
//     calls [Receive] (multiexit's Install does), any other program goes
//     through the exec shim ([Shim]).
//   - A process that received sockets finds them by name ([File]).
//   - Nothing here imports package net: the multiexit core imports this
//     package, and net would link the cgo resolver into every program that
//     uses multiexit (see TestNoNetDependency). Addresses are parsed with
//     net/netip, sockets made with golang.org/x/sys/unix.
//
// Platforms: everything on Linux; on the other Unix systems everything but
// the exec shim ([Pass] with [AnyProgram] returns an error there); on
// Windows nothing (every function returns an error wrapping
// errors.ErrUnsupported).
//
// # The shared socket and its blocking mode
//
// Every process that holds a handed-down socket holds the same open file
// description: what one sets with fcntl(F_SETFL) — O_NONBLOCK — every other
// sees. This package never changes that flag: [Open] makes sockets in
// blocking mode, as systemd passes them, and [Pass] hands them down through
// files made by os.NewFile, whose Fd method (which os/exec calls) leaves the
// mode alone; a net.Listener's File does not (its Fd switches the shared
// description to blocking under the parent's own poller: issue 19's trap).
//
// A Go program that turns a received socket into a net.Listener (package
// net's FileListener, and so the sub-package multiexit/listen) sets
// O_NONBLOCK on the shared description: from then on the parent's
// descriptor, and every other worker's, is non-blocking too. For a pool of
// Go workers that is what each wants. A program that calls accept(2) in
// blocking mode without polling first (a simple C or Python server) then
// gets EAGAIN whenever no connection is waiting, and usually fails: a pool
// that mixes Go workers with such programs on one socket is not supported.
// Programs that poll before accepting (event loops: nginx, libuv, asyncio)
// work either way. TestMixedPoolSharesNonblock shows both facts.
package listenfd

import (
	"fmt"
	"os"
)

// The systemd variables (sd_listen_fds(3)) and the first descriptor.
const (
	EnvFDs   = "LISTEN_FDS"
	EnvPID   = "LISTEN_PID"
	EnvNames = "LISTEN_FDNAMES"
	StartFD  = 3 // SD_LISTEN_FDS_START
)

// markerVar tells a Go worker that its parent handed it sockets and that
// LISTEN_PID is its own to set (see Receive). Its value is the parent's PID.
const markerVar = "MULTIEXIT_LISTEN"

// Socket is a named socket this process holds: opened by Open or adopted
// from systemd. It owns its descriptor, which is close-on-exec: a child
// gets it only through Pass. Its methods may be called from several
// goroutines.
type Socket struct {
	name    string
	network string
	addr    string
	f       *os.File // made by os.NewFile: its Fd never changes the mode
	//lint:ignore U1000 set and used on Unix only (Open and Close)
	unlink *fileID // the Unix socket file Open created, removed by Close
}

// Name is the name the socket is passed under (LISTEN_FDNAMES).
func (s *Socket) Name() string { return s.name }

// Network is the socket's network, as package net spells it: "tcp",
// "tcp4", "tcp6", "udp", "udp4", "udp6", "unix", "unixgram" or
// "unixpacket". An adopted socket's is what the kernel says it is ("tcp4"
// or "tcp6" rather than "tcp").
func (s *Socket) Network() string { return s.network }

// Addr is the address the socket is bound to, as the kernel reports it
// after bind: the real port when Open was given port 0 ("127.0.0.1:41873",
// "[::1]:41873"), a Unix socket's path ("@name" for Linux's abstract
// namespace).
func (s *Socket) Addr() string { return s.addr }

func (s *Socket) String() string {
	return fmt.Sprintf("listener %q (%s %s)", s.name, s.network, s.addr)
}

// Receiver says how a child learns its own PID into LISTEN_PID.
type Receiver int

const (
	// GoWorker is a multiexit worker: a Go program whose Install calls
	// Receive before it does anything else.
	GoWorker Receiver = iota
	// AnyProgram is any other program (C, Python, a Go program without
	// multiexit): it is started through the exec shim (Linux only).
	AnyProgram
)

// Handoff is the parent's side of one child's hand-off, from Pass to the
// child's start.
type Handoff struct {
	path   string   // the command the shim executes
	status *os.File // the read end of the shim's status pipe
	w      *os.File // its write end, the child's
}

// Started finishes the hand-off once cmd.Start has returned startErr, and
// returns startErr or, if the exec shim could not execute the command,
// that error as os/exec would have returned it (an *os.PathError with Op
// "fork/exec", wrapping the errno: ENOENT, EACCES, ENOEXEC, ...): the shim
// then exits 127 and the caller must still Wait for it. For a GoWorker, or
// a nil Handoff, it only returns startErr. Through the shim it waits until
// the shim has executed the command (one exec of this binary: see
// BenchmarkShim). It must be called exactly once, even when startErr is
// not nil, so that its pipe is closed.
func (h *Handoff) Started(startErr error) error {
	if h == nil || h.status == nil {
		return startErr
	}
	h.w.Close()
	defer h.status.Close()
	if startErr != nil {
		return startErr
	}
	var b [4]byte
	n, _ := readFull(h.status, b[:])
	if n < len(b) {
		return nil // closed on exec (or the shim died: its status says so)
	}
	errno := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
	return &os.PathError{Op: "fork/exec", Path: h.path, Err: errnoErr(errno)}
}

func readFull(f *os.File, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := f.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

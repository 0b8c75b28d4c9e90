// Package listen gives a worker the sockets its parent handed it, by name,
// as package net's types: the parent (a multiexit program with listeners,
// or systemd itself through socket activation) opened them once, and every
// worker — restarted ones included — receives them in the systemd format
// (descriptors from 3, LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID).
//
//	ln, err := listen.Listener("web")
//	if err != nil {
//		return err
//	}
//	return http.Serve(ln, handler)
//
// It is a package of its own because it imports package net, which the
// multiexit core keeps out of every program (see the core's
// TestNoNetDependency); a server imports net anyway. A worker's Install
// must have run first (it sets LISTEN_PID to the worker's PID); in a
// program that systemd started directly nothing is needed.
//
// Every call returns a new value on a new duplicate of the passed
// descriptor, which the caller closes; the passed descriptor itself stays
// open, close-on-exec, so that the programs the worker starts do not
// inherit it. Closing a Listener stops this worker accepting; the socket,
// its address and the connections waiting in its queue live on in the
// parent and the other workers.
//
// Package net puts the socket into non-blocking mode, and that mode
// belongs to the socket's open file description, which the parent and
// every worker share: a pool that mixes Go workers with programs that
// accept(2) in blocking mode without polling first is not supported (they
// get EAGAIN when no connection waits); programs that poll before they
// accept (event loops) work either way.
//
// Unix only (Linux, macOS, the BSDs); on Windows every function returns
// an error.
package listen

import (
	"fmt"
	"net"
	"os"

	"github.com/multiexit/multiexit/internal/listenfd"
)

// File returns the socket passed to this process as name, as an *os.File
// on a new duplicate, close-on-exec, that the caller closes. The name must
// have been passed for exactly one descriptor, a socket (a listening one,
// for a stream socket); LISTEN_PID must be this process's PID. Errors
// name the descriptor, the name and what was passed.
func File(name string) (*os.File, error) {
	return listenfd.File(name)
}

// Listener returns the stream socket (TCP, Unix) passed to this process as
// name, as a net.Listener, which the caller closes. See File.
func Listener(name string) (net.Listener, error) {
	f, err := File(name)
	if err != nil {
		return nil, err
	}
	defer f.Close() // FileListener made its own duplicate
	if err := want(f, name, true); err != nil {
		return nil, err
	}
	l, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("listener %q: %w", name, err)
	}
	return l, nil
}

// PacketConn returns the datagram socket (UDP, Unix datagram) passed to
// this process as name, as a net.PacketConn, which the caller closes. See
// File.
func PacketConn(name string) (net.PacketConn, error) {
	f, err := File(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := want(f, name, false); err != nil {
		return nil, err
	}
	c, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("listener %q: %w", name, err)
	}
	return c, nil
}

// Names are the names of the sockets passed to this process, in order
// (descriptor 3 first); nil if none was, or if they were meant for another
// process (LISTEN_PID).
func Names() ([]string, error) {
	p, err := listenfd.Parse()
	if err != nil {
		return nil, err
	}
	return p.Names(), nil
}

// want checks that f is a stream socket (or a datagram one).
func want(f *os.File, name string, stream bool) error {
	is, err := listenfd.Stream(f)
	switch {
	case err != nil:
		return fmt.Errorf("listener %q: %w", name, err)
	case is && !stream:
		return fmt.Errorf("listener %q is a listening stream socket: use Listener", name)
	case !is && stream:
		return fmt.Errorf("listener %q is a datagram socket: use PacketConn", name)
	}
	return nil
}

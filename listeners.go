package multiexit

// Named listening sockets that this process holds for its children: opened
// here or adopted from systemd, handed to every worker (and to the
// commands ShareListeners marks) in the systemd format.

import (
	"errors"
	"fmt"
	"os/exec"
	"sync"

	"github.com/multiexit/multiexit/internal/listenfd"
)

// init runs the exec shim of ShareListeners, if this process is one: it
// executes the command and never returns.
func init() { listenfd.Shim() }

var listeners struct {
	mu      sync.Mutex
	socks   []*listenfd.Socket
	passed  *listenfd.Passed // what systemd passed this process, adopted once
	adopted bool
	shared  cmdSet // the external commands ShareListeners marked
}

// Listen gives this process a named listening socket for its children, and
// returns the address it is bound to (the real port when address asks for
// port 0). Every worker that Start starts from then on — restarted ones
// (Supervise) included — receives this process's sockets in the systemd
// format: descriptors from 3, LISTEN_FDS, LISTEN_FDNAMES with their names,
// and LISTEN_PID naming the worker itself (set by its Install). A worker
// takes one by name with the sub-package multiexit/listen (a net.Listener)
// or listen.File. An external command gets them only if ShareListeners
// marked it.
//
// If systemd passed this process a socket named name (socket activation:
// FileDescriptorName= in the .socket unit, LISTEN_FDNAMES), Listen adopts
// it instead, and network and address are not used; the address returned
// is the socket's. Otherwise it opens one: network is "tcp", "tcp4",
// "tcp6", "udp", "udp4", "udp6", "unix", "unixpacket" or "unixgram";
// a TCP or UDP address is "host:port" with an IP address literal or an
// empty host (names are not resolved: the core keeps no dependency on
// package net); a Unix address is a path, or "@name" for Linux's abstract
// namespace. A stale socket file left at the path by a killed process is
// replaced; a live one is an error.
//
// The socket is shared, not copied: connections waiting in its queue are
// never lost when a worker dies, and the next worker accepts them. This
// process keeps the socket open until it exits and never accepts on it.
// A name given twice is an error. Unix only; on Windows Listen returns an
// error wrapping errors.ErrUnsupported.
func Listen(name, network, address string) (string, error) {
	listeners.mu.Lock()
	defer listeners.mu.Unlock()
	for _, s := range listeners.socks {
		if s.Name() == name {
			return "", fmt.Errorf("multiexit: Listen %q: this process already has a listener of that name (%s)", name, s.Addr())
		}
	}
	if !listeners.adopted {
		listeners.adopted = true
		p, err := listenfd.Adopt()
		if err != nil && !errors.Is(err, errors.ErrUnsupported) {
			return "", fmt.Errorf("multiexit: Listen %q: the sockets systemd passed: %w", name, err)
		}
		listeners.passed = p
	}
	var s *listenfd.Socket
	var err error
	if p := listeners.passed; p != nil && hasName(p.Names(), name) {
		s, err = p.Socket(name)
	} else {
		s, err = listenfd.Open(name, network, address)
	}
	if err != nil {
		return "", fmt.Errorf("multiexit: Listen: %w", err)
	}
	listeners.socks = append(listeners.socks, s)
	return s.Addr(), nil
}

func hasName(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// ShareListeners marks cmd, an external command (not a worker), before
// Start, to receive this process's listeners (see Listen) in the systemd
// format, and returns it: a C, Python or any other program finds them with
// sd_listen_fds(3) and its peers. Since os/exec runs no code between fork
// and exec, the command is started through a short exec shim (this binary,
// re-executed) that sets LISTEN_PID to the command's PID and then executes
// it; an exec failure is reported by Start as os/exec reports it. Linux
// only: elsewhere Start returns an error for a marked command.
//
// Package net makes a socket it is given non-blocking, and that mode is
// shared by every process that holds the socket: a C program that calls
// accept(2) in blocking mode without polling first cannot share a socket
// with Go workers (see multiexit/listen).
func ShareListeners(cmd *exec.Cmd) *exec.Cmd {
	listeners.shared.add(cmd)
	return cmd
}

// passListeners prepares cmd, before the control channel's descriptors
// are added, to receive this process's listeners: a worker always, an
// external command if ShareListeners marked it. The handoff's Started must
// follow the start.
func passListeners(cmd *exec.Cmd, worker bool) (*listenfd.Handoff, error) {
	marked := listeners.shared.take(cmd)
	listeners.mu.Lock()
	socks := append([]*listenfd.Socket(nil), listeners.socks...)
	listeners.mu.Unlock()
	if len(socks) == 0 || !worker && !marked {
		return nil, nil
	}
	recv := listenfd.AnyProgram
	if worker {
		recv = listenfd.GoWorker
	}
	return listenfd.Pass(cmd, socks, recv)
}

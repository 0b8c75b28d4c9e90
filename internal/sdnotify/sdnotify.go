// Package sdnotify speaks systemd's notify protocol (sd_notify(3)): a
// process that a service manager started with NOTIFY_SOCKET set tells it,
// in one datagram per message, that it is ready (READY=1), that it is
// stopping and may take so long (STOPPING=1, EXTEND_TIMEOUT_USEC=), or
// what it is doing (STATUS=). Both the multiexit library and the
// multiexit command use it; the command's relay, which passes on what its
// COMMAND's tree sends, keeps its own logic and uses a [Sender].
//
// It also names the variables a service manager gives the process it
// started (NOTIFY_SOCKET, LISTEN_*, WATCHDOG_*), which are meant for that
// process alone, and removes them from a child's environment ([ScrubEnv]).
//
// It is written here rather than calling
// github.com/coreos/go-systemd/v22/daemon, which the tests hold it
// against: that package dials with package net, and net, in a program
// built with cgo, links the cgo runtime into every binary that imports
// multiexit, which costs each process start, every worker's included,
// about a millisecond and a half (docs/performance.md).
//
// Platforms: every Unix system (an address that starts with '@' names a
// socket in Linux's abstract namespace; systemd's vsock: addresses are not
// supported and fail to send). On Windows, which has no service manager
// that reads NOTIFY_SOCKET, [Enabled] is false, and [Send] and [Open]
// return an error if NOTIFY_SOCKET is set.
package sdnotify

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"
)

// The service manager's variables (sd_notify(3), sd_listen_fds(3),
// sd_watchdog_enabled(3)). They are meant for the process systemd started,
// not for its children.
const (
	Socket       = "NOTIFY_SOCKET"
	ListenFDs    = "LISTEN_FDS"
	ListenPID    = "LISTEN_PID"
	ListenNames  = "LISTEN_FDNAMES"
	WatchdogPID  = "WATCHDOG_PID"
	WatchdogUSec = "WATCHDOG_USEC"
)

// vars are the variables of the constants above: those ScrubEnv removes.
var vars = [...]string{Socket, ListenFDs, ListenPID, ListenNames, WatchdogPID, WatchdogUSec}

// IsVar reports whether name is one of the service manager's variables
// meant for the process it started: NOTIFY_SOCKET, LISTEN_FDS, LISTEN_PID,
// LISTEN_FDNAMES, WATCHDOG_PID or WATCHDOG_USEC.
func IsVar(name string) bool {
	for _, v := range vars {
		if name == v {
			return true
		}
	}
	return false
}

// Send sends state (one or more "NAME=value" lines, joined by '\n') to the
// socket NOTIFY_SOCKET names, in one datagram, as sd_notify(3) does.
// Without NOTIFY_SOCKET it does nothing and returns nil. The error names
// the socket. It never changes the environment.
func Send(state string) error {
	addr := os.Getenv(Socket)
	if addr == "" {
		return nil
	}
	if err := send(addr, state); err != nil {
		return fmt.Errorf("multiexit: notify %s=%s: %w", Socket, addr, err)
	}
	return nil
}

// Ready sends READY=1 (see Send).
func Ready() error { return Send("READY=1") }

// Stopping tells the service manager that the process is stopping
// (STOPPING=1) and asks it to wait extend from now before it kills
// (EXTEND_TIMEOUT_USEC), with status as the STATUS= line if it is not
// empty, all in one datagram. When Enabled is false it does nothing and
// allocates nothing.
func Stopping(extend time.Duration, status string) error {
	if !Enabled() {
		return nil
	}
	msg := "STOPPING=1\nEXTEND_TIMEOUT_USEC=" + strconv.FormatInt(extend.Microseconds(), 10)
	if status != "" {
		msg += "\nSTATUS=" + status
	}
	return Send(msg)
}

// Status sends STATUS=s (what the process is doing, shown by systemctl
// status). When Enabled is false it does nothing and allocates nothing; a
// caller that formats s should check Enabled first.
func Status(s string) error {
	if !Enabled() {
		return nil
	}
	return Send("STATUS=" + s)
}

// ScrubEnv returns env without the service manager's variables that were
// meant for this process (see IsVar; a child that sent WATCHDOG=1 would
// speak for this process), each only where its value is the one in this
// process's environment. A caller that set its own value for a child (a
// relay's notify socket, say) keeps it.
//
// WATCHDOG_USEC goes with WATCHDOG_PID: where this process has a
// WATCHDOG_PID and env does not carry it, the caller took it out to hand
// the watchdog to the child (as RelayEnv does), and WATCHDOG_USEC stays;
// otherwise it is removed like the others.
//
// env is not modified; a nil env stands for this process's environment, as
// in exec.Cmd.Env, and stays nil when there is nothing to remove. Without
// these variables env is returned as it is.
func ScrubEnv(env []string) []string {
	var own [len(vars)]string // "NAME=value" of each variable this process has
	n, watchdog := 0, -1
	for _, name := range vars {
		if v, ok := os.LookupEnv(name); ok {
			if name == WatchdogUSec {
				watchdog = n
			}
			own[n] = name + "=" + v
			n++
		}
	}
	if n == 0 {
		return env
	}
	if env == nil {
		env = os.Environ()
	}
	if pid, ok := os.LookupEnv(WatchdogPID); ok && watchdog >= 0 && !slices.Contains(env, WatchdogPID+"="+pid) {
		own[watchdog], n = own[n-1], n-1 // handed over: it stays
	}
	drop := func(kv string) bool {
		for _, o := range own[:n] {
			if kv == o {
				return true
			}
		}
		return false
	}
	var out []string
	for i, kv := range env {
		if !drop(kv) {
			if out != nil {
				out = append(out, kv)
			}
			continue
		}
		if out == nil {
			out = make([]string, i, len(env)-1)
			copy(out, env[:i])
		}
	}
	if out == nil {
		return env
	}
	return out
}

// RelayEnv returns env for a child whose notifications a relay passes on
// to the service manager from socket: NOTIFY_SOCKET=socket in place of
// any NOTIFY_SOCKET, and no WATCHDOG_PID, which names the relaying
// process; without it the child's sd_watchdog_enabled(3) takes
// WATCHDOG_USEC as its own, and its WATCHDOG=1 reaches the manager
// through the relay. env is not modified.
func RelayEnv(env []string, socket string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !hasName(kv, Socket) && !hasName(kv, WatchdogPID) {
			out = append(out, kv)
		}
	}
	return append(out, Socket+"="+socket)
}

// hasName reports whether the environment entry kv sets name.
func hasName(kv, name string) bool {
	return len(kv) > len(name) && kv[len(name)] == '=' && kv[:len(name)] == name
}

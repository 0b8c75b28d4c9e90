package multiexit

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The service manager's variables (sd_notify(3), sd_listen_fds(3),
// sd_watchdog_enabled(3)). They are meant for the process systemd started,
// not for its children.
const (
	envNotifySocket = "NOTIFY_SOCKET"
	envListenFDs    = "LISTEN_FDS"
	envListenPID    = "LISTEN_PID"
	envListenNames  = "LISTEN_FDNAMES"
	envWatchdogPID  = "WATCHDOG_PID"
	envWatchdogUSec = "WATCHDOG_USEC"
)

// engineVars are the service manager's variables that scrubEngineEnv and
// guardianEnv keep from children.
var engineVars = [...]string{envNotifySocket, envListenFDs, envListenPID, envListenNames, envWatchdogPID, envWatchdogUSec}

// stopMargin is added to the shutdown deadline in EXTEND_TIMEOUT_USEC: the
// exit itself, and the short windows of hooks that run after the deadline,
// take a moment more.
const stopMargin = time.Second

// Ready tells the service manager that this program is ready: under
// systemd (NOTIFY_SOCKET is set, as for a Type=notify unit) it sends
// READY=1, in one call, and systemctl start returns. Call it once the
// program serves, for example after Start returned (every worker has
// acknowledged Install). Without NOTIFY_SOCKET it does nothing and returns
// nil, so a program can call it unconditionally; it works without Install,
// on every platform.
//
// multiexit itself tells systemd when the shutdown begins (STOPPING=1), and
// extends systemd's stop timeout (TimeoutStopSec) to the shutdown deadline
// (WithTimeout), so that systemd does not kill a shutdown that is still
// inside it. Workers and other children do not inherit NOTIFY_SOCKET, the
// socket-activation variables (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES) nor
// the watchdog's (WATCHDOG_PID, WATCHDOG_USEC) this process was given:
// only this process speaks to systemd.
func Ready() error {
	return sdNotify("READY=1")
}

// notifyStopping tells the service manager that the shutdown has begun,
// and asks it to wait for the shutdown deadline plus a margin before it
// kills (EXTEND_TIMEOUT_USEC). Without NOTIFY_SOCKET it does nothing, and
// costs one environment lookup: it runs in every worker's shutdown.
func notifyStopping(deadline time.Duration) {
	if !notifying() {
		return
	}
	usec := (deadline + stopMargin).Microseconds()
	sdNotify("STOPPING=1" +
		"\nEXTEND_TIMEOUT_USEC=" + strconv.FormatInt(usec, 10) +
		"\nSTATUS=multiexit: shutting down (deadline " + deadline.String() + ")")
}

// notifyStatus sends a STATUS= line (what the shutdown is doing, shown by
// systemctl status). Without NOTIFY_SOCKET it does nothing; a caller that
// formats s should check notifying first.
func notifyStatus(s string) {
	if !notifying() {
		return
	}
	sdNotify("STATUS=" + s)
}

// sdNotify sends state to NOTIFY_SOCKET, if set, in one datagram, as
// sd_notify(3) does. It never changes the environment. It is written here
// rather than calling github.com/coreos/go-systemd/v22/daemon, which the
// tests use as the reference: that package dials with package net, and
// net, in a program built with cgo (the default where a C compiler is
// installed), makes every binary that imports multiexit dynamically linked
// with the cgo runtime, which costs each process start, every worker's
// included, about a millisecond and a half (docs/performance.md).
func sdNotify(state string) error {
	addr := os.Getenv(envNotifySocket)
	if addr == "" {
		return nil
	}
	if err := sendDatagram(addr, state); err != nil {
		return fmt.Errorf("multiexit: notify %s: %w", envNotifySocket+"="+addr, err)
	}
	return nil
}

// scrubEngineEnv returns env without the service manager's variables that
// were meant for this process: NOTIFY_SOCKET, LISTEN_FDS, LISTEN_PID,
// LISTEN_FDNAMES, WATCHDOG_PID and WATCHDOG_USEC (a child that sent
// WATCHDOG=1 would speak for this process), each only where its value is the one in this process's
// environment (multiexit never changes that). A caller that set its own
// value for a child (a proxy notify socket, say) keeps it. env is not
// modified; a nil env stands for this process's environment, as in
// exec.Cmd.Env, and stays nil when there is nothing to remove. Without
// these variables env is returned as it is.
func scrubEngineEnv(env []string) []string {
	var own [len(engineVars)]string // "NAME=value" of each variable this process has
	n := 0
	for _, name := range engineVars {
		if v, ok := os.LookupEnv(name); ok {
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

// guardianEnv is the environment of the tree's guardian: this process's,
// without anything meant for this process alone: multiexit's own variables
// (MULTIEXIT, the tree's tag, the layer's cap: the guardian reads only its
// own) and the service manager's (NOTIFY_SOCKET, LISTEN_*, WATCHDOG_*),
// whatever their values: the guardian speaks to no one and serves nothing.
func guardianEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return strings.HasPrefix(name, "MULTIEXIT") || slices.Contains(engineVars[:], name)
	})
}

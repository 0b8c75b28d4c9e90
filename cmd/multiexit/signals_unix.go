//go:build unix

package main

import (
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// sigSet is a set of the signals 1 to 64: bit s-1 holds signal s.
type sigSet uint64

func (s sigSet) has(sig syscall.Signal) bool {
	return sig >= 1 && sig <= 64 && s&(1<<(sig-1)) != 0
}

func (s sigSet) with(sig syscall.Signal) sigSet {
	if sig < 1 || sig > 64 {
		return s
	}
	return s | 1<<(sig-1)
}

func (s sigSet) String() string {
	var names []string
	for sig := syscall.Signal(1); sig <= 64; sig++ {
		if s.has(sig) {
			names = append(names, unix.SignalName(sig))
		}
	}
	return strings.Join(names, ",")
}

// callerConfig is the signal configuration multiexit was started with:
// the signals its caller ignored and those it blocked. COMMAND is started
// with the same (see passOn).
type callerConfig struct {
	ignored, blocked sigSet
	// exact: ignored and blocked are the caller's. Built without cgo they
	// are only what the Go runtime left of them (callersig_nocgo.go).
	exact bool
}

// forwardable are the signals multiexit passes on to COMMAND: every signal
// a process can catch, but SIGCHLD (its own children's news, which
// multiexit uses to reap) and, on Linux, signals 32 and 33 (the C
// library's and the Go runtime's own). A fault signal (SIGSEGV, SIGBUS,
// SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGSTKFLT, SIGABRT) is forwarded when
// kill(2) sent it; one that multiexit's own fault raised still crashes it
// (the Go runtime tells them apart by the signal's origin, si_code).
// SIGTSTP, SIGTTIN and SIGTTOU go through jobControl.
func forwardable() []syscall.Signal {
	var out []syscall.Signal
	for sig := syscall.Signal(1); sig < 32; sig++ {
		switch sig {
		case syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGCHLD:
			continue
		}
		out = append(out, sig)
	}
	return append(out, realtimeSignals()...)
}

// isJobControl reports whether sig stops a process by default from a
// terminal's or a user's request: it goes through jobControl.
func isJobControl(sig os.Signal) bool {
	return sig == syscall.SIGTSTP || sig == syscall.SIGTTIN || sig == syscall.SIGTTOU
}

// jobControl is what multiexit does with SIGTSTP, SIGTTIN or SIGTTOU sent
// to it: it passes sig on to COMMAND's process group (group), which stops,
// as the terminal's Ctrl-Z would stop it; under a terminal the library
// then stops multiexit with it (see multiexit.Foreground), so that the
// shell shows the job stopped, and fg or bg resumes both. If nothing of
// the group is left to stop, multiexit stops alone, as it would without
// catching sig (by SIGSTOP, which no one catches).
func jobControl(sig os.Signal, group func(os.Signal) error) error {
	err := group(sig)
	if err != nil {
		syscall.Kill(os.Getpid(), syscall.SIGSTOP)
	}
	return err
}

// catchSignals makes the forwardable signals sent to multiexit reach c,
// but those its caller ignored: multiexit ignores them too, and so
// COMMAND inherits them ignored (a caught signal is reset to its default
// in a child; an ignored one stays ignored through exec).
func catchSignals(c chan<- os.Signal, caller callerConfig) {
	for _, sig := range forwardable() {
		if caller.ignored.has(sig) {
			signal.Ignore(sig)
			continue
		}
		if runtimeOwned(sig) {
			// Without cgo these are not forwarded (see catchInC).
			catchInC(sig, c)
			continue
		}
		if !staysWithGo(sig) && catchInC(sig, c) {
			// Caught in C too: one sigaction. Each signal.Notify of a
			// new signal waits for the Go runtime's signal thread to
			// update its mask (two thread switches), and they made
			// most of multiexit's start. (Signals sent close together
			// may reach COMMAND in another order, one caught in C and
			// one by the runtime; the kernel itself delivers pending
			// standard signals in the order of their numbers.)
			continue
		}
		signal.Notify(c, sig)
	}
}

// staysWithGo reports whether the Go runtime's handler must keep sig,
// which multiexit then catches with signal.Notify: the faults (the runtime
// tells a fault of multiexit's own, a crash, from one sent by kill(2)),
// SIGPIPE (multiexit's own write to a broken standard output or error is
// fatal unless os/signal catches it), and SIGINT and SIGCONT, which other
// code of the process also waits for through os/signal (a worker's relay
// of Ctrl-C, the terminal's job control: see internal/osproc). The other
// forwardable signals neither the runtime nor the library uses (Linux's
// SIGSTKFLT included: its kernel never raises it).
func staysWithGo(sig syscall.Signal) bool {
	switch sig {
	case syscall.SIGILL, syscall.SIGTRAP, syscall.SIGABRT, syscall.SIGBUS, syscall.SIGFPE,
		syscall.SIGSEGV, syscall.SIGSYS,
		syscall.SIGPIPE, syscall.SIGINT, syscall.SIGCONT:
		return true
	}
	return false
}

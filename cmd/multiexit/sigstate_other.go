//go:build unix && !linux

package main

import (
	"os/signal"
	"syscall"
)

// ignoredNow is the set of ignored signals that Go can tell: SIGHUP and
// SIGINT.
func ignoredNow() sigSet {
	var s sigSet
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT} {
		if signal.Ignored(sig) {
			s = s.with(sig)
		}
	}
	return s
}

// blockedNow: no per-thread mask to read here.
func blockedNow() sigSet { return 0 }

// realtimeSignals: none here.
func realtimeSignals() []syscall.Signal { return nil }

// runtimeOwned reports whether the Go runtime keeps sig from os/signal:
// SIGPROF (its profiler's) and SIGURG (sent to its own threads to preempt
// goroutines, so that one from outside cannot be told from them).
func runtimeOwned(sig syscall.Signal) bool {
	return sig == syscall.SIGPROF || sig == syscall.SIGURG
}

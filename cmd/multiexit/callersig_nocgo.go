//go:build !cgo && unix

package main

import (
	"os"
	"syscall"
)

// callerSignals is what a build without cgo can know of the signal
// configuration multiexit was started with. Before any Go code runs, the
// Go runtime replaces the disposition of every signal with its own handler
// but for SIGHUP and SIGINT when ignored and the job-control signals
// (SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT), and unblocks the signals it needs
// in every thread: the other ignored signals and those blocked ones are
// lost (see callerConfig.exact, and the cgo build's constructor).
func callerSignals() callerConfig {
	return callerConfig{ignored: ignoredNow(), blocked: blockedNow()}
}

// catchInC: without cgo, the Go runtime's handler takes every SIGPROF, a
// SIGURG from outside cannot be told from the runtime's own, and signal 34
// keeps its default action (it ends multiexit; see runtimeOwned).
func catchInC(syscall.Signal, chan<- os.Signal) bool { return false }

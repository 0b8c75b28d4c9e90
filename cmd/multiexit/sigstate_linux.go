package main

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ignoredNow is the set of signals this process ignores now, as the
// kernel has it (SigIgn in /proc/self/status): the set a child started
// now inherits through exec.
func ignoredNow() sigSet {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("SigIgn:")); ok {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 16, 64)
			if err != nil {
				return 0
			}
			return sigSet(n)
		}
	}
	return 0
}

// blockedNow is the signal mask of a thread of this process's own: the
// mask the Go runtime gives the child it starts (the caller's, less the
// signals the runtime unblocks for itself).
func blockedNow() sigSet {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.Sigset_t
	if unix.PthreadSigmask(unix.SIG_BLOCK, nil, &old) != nil {
		return 0
	}
	return fromSigset(&old)
}

// fromSigset is the first 64 signals of s.
func fromSigset(s *unix.Sigset_t) sigSet {
	var out sigSet
	w := uint(unsafe.Sizeof(s.Val[0]) * 8) // 64, or 32 on 32-bit platforms
	for i := range s.Val {
		if uint(i)*w >= 64 {
			break
		}
		out |= sigSet(uint64(s.Val[i]) << (uint(i) * w))
	}
	return out
}

// toSigset is set as a unix.Sigset_t.
func toSigset(set sigSet) *unix.Sigset_t {
	var s unix.Sigset_t
	w := uint(unsafe.Sizeof(s.Val[0]) * 8)
	for i := range s.Val {
		if uint(i)*w >= 64 {
			break
		}
		setWord(&s.Val[i], uint64(set>>(uint(i)*w))&(^uint64(0)>>(64-w)))
	}
	return &s
}

func setWord[T uint32 | uint64](p *T, v uint64) { *p = T(v) }

// realtimeSignals are Linux's real-time signals that programs use, SIGRTMIN
// (34, as the C library numbers it) to SIGRTMAX (64): 32 and 33 are the C
// library's and the Go runtime's own.
func realtimeSignals() []syscall.Signal {
	var out []syscall.Signal
	for sig := syscall.Signal(34); sig <= 64; sig++ {
		out = append(out, sig)
	}
	return out
}

// runtimeOwned reports whether the Go runtime keeps sig from os/signal:
// SIGPROF (its profiler's), SIGURG (sent to its own threads to preempt
// goroutines, so that one from outside cannot be told from them), and 34
// (reserved for musl's SIGSYNCCALL: the runtime leaves it at its default,
// which ends the process; glibc's SIGRTMIN).
func runtimeOwned(sig syscall.Signal) bool {
	return sig == syscall.SIGPROF || sig == syscall.SIGURG || sig == 34
}

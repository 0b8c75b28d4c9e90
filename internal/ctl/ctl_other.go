//go:build !linux

package ctl

// Without Linux, a worker learns of its parent's death by reading the
// control channel (Worker.Watch), not by a signal.

import "os"

// deathPipe makes the pipe whose closing tells a worker that its parent
// died (on Windows: to stop).
func deathPipe() (r, w *os.File, err error) { return os.Pipe() }

// signalOnHangup: only Linux can choose the signal O_ASYNC sends; the
// worker watches the control channel.
func signalOnHangup(int) (armed, hungUp bool) { return false, false }

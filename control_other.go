//go:build !linux

package multiexit

// Without Linux, a worker learns of its parent's death by reading the
// control channel, not by a signal.

// signalOnHangup: only Linux can choose the signal O_ASYNC sends; the
// worker watches the control channel.
func signalOnHangup(int) (armed, hungUp bool) { return false, false }

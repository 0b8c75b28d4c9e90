package multiexit

import "time"

// Seams for the scenario processes of the external test package: the test
// binary is also every program the tests run.

// SetAckTimeout shortens AckTimeout in this process.
func SetAckTimeout(d time.Duration) { starts.ackTimeout = d }

// StackLen is how many entries the exit stack holds.
func StackLen() int { return len(exitStack.snapshot()) }

// newShutdownCtx is the hooks' context on the real clock.
func newShutdownCtx(onEnd func()) *shutdownCtx { return newDeadlineCtx(realClock, onEnd) }

package multiexit

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// shutdownCtx is the context the hooks get. It is made before the shutdown
// begins, with a stopped timer, so that beginning allocates nothing: arm
// sets the deadline and starts the timer. It behaves as
// context.WithDeadlineCause under context.WithCancelCause: at the deadline
// Err is context.DeadlineExceeded, after an escalation context.Canceled,
// and context.Cause says which, for it and for the contexts derived from
// it. onEnd runs once, when the context ends (deadline or escalation).
//
// A late window's context (newWindowCtx) is the same, with its own cause
// at its deadline; release is its cancel function.
type shutdownCtx struct {
	base     context.Context // a cancelCtx: context.Cause reads the cause there
	cancel   context.CancelCauseFunc
	done     chan struct{} // closed after base is cancelled
	clock    clock
	timer    timer
	timeout  time.Duration
	deadline time.Time
	window   bool // a late window's
	expired  atomic.Bool
	once     sync.Once
	onEnd    func()
}

// newDeadlineCtx makes the hooks' context, on clk, not yet armed.
func newDeadlineCtx(clk clock, onEnd func()) *shutdownCtx {
	c := &shutdownCtx{done: make(chan struct{}), onEnd: onEnd, clock: clk}
	c.base, c.cancel = context.WithCancelCause(context.Background())
	c.timer = clk.afterFunc(time.Duration(1<<62), c.deadlinePassed)
	c.timer.Stop()
	return c
}

// newWindowCtx makes the context of a hook that runs after the deadline:
// it ends after window, as context.WithTimeoutCause(context.Background(),
// window, cause) would.
func newWindowCtx(clk clock, window time.Duration) *shutdownCtx {
	c := newDeadlineCtx(clk, nil)
	c.window = true
	c.arm(window)
	return c
}

// arm starts the deadline. Called once, by begin, before the context is
// handed out.
func (c *shutdownCtx) arm(timeout time.Duration) {
	c.timeout, c.deadline = timeout, c.clock.now().Add(timeout)
	c.timer.Reset(timeout)
}

func (c *shutdownCtx) deadlinePassed() {
	if c.window {
		c.end(windowPassed(c.timeout), true)
		return
	}
	c.end(deadlinePassed(c.timeout), true)
}

// release cancels the context (context.Canceled, unless it has ended) and
// stops its timer.
func (c *shutdownCtx) release() {
	c.timer.Stop()
	c.end(context.Canceled, false)
}

// end ends the context with cause, once, runs onEnd, and reports whether
// this call ended it.
func (c *shutdownCtx) end(cause error, expired bool) bool {
	first := false
	c.once.Do(func() {
		first = true
		c.expired.Store(expired)
		c.cancel(cause) // before done: whoever sees done sees Err and Cause
		close(c.done)
	})
	if first && c.onEnd != nil {
		c.onEnd()
	}
	return first
}

// left is what is left of the deadline (0 once it passed).
func (c *shutdownCtx) left() time.Duration {
	if c.Err() != nil {
		return 0
	}
	return max(c.deadline.Sub(c.clock.now()), 0)
}

func (c *shutdownCtx) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *shutdownCtx) Done() <-chan struct{}       { return c.done }
func (c *shutdownCtx) Value(key any) any           { return c.base.Value(key) }

func (c *shutdownCtx) Err() error {
	if c.base.Err() == nil {
		return nil
	}
	if c.expired.Load() {
		return context.DeadlineExceeded
	}
	return context.Canceled
}

// AfterFunc is what the context package calls to propagate the end of this
// context to the contexts derived from it (context.WithTimeout(ctx, …) in a
// hook): they end with this context's Err and Cause, as they would under
// context.WithDeadlineCause.
func (c *shutdownCtx) AfterFunc(f func()) (stop func() bool) {
	return context.AfterFunc(c.base, f)
}

func (c *shutdownCtx) String() string { return "multiexit.shutdownContext" }

// deadlinePassed is the cause of the shutdown context's end at the
// deadline. It formats only when read: begin runs in every worker's
// shutdown, where fmt is cold code.
type deadlinePassed time.Duration

func (d deadlinePassed) Error() string {
	return "multiexit: shutdown deadline (" + time.Duration(d).String() + ") passed"
}

// windowPassed is the cause of a late window's end.
type windowPassed time.Duration

func (d windowPassed) Error() string {
	return "multiexit: " + time.Duration(d).String() + " window after the shutdown deadline ran out"
}

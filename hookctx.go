package multiexit

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// The hooks' context: the shutdown's deadline, brought forward by a worker's
// parent, and the late windows.

// shutdownCtx is the context the hooks get. It is made before the shutdown
// begins, with a stopped timer, so that beginning allocates nothing: arm
// sets the deadline and starts the timer. It behaves as
// context.WithDeadlineCause under context.WithCancelCause: at the deadline
// Err is context.DeadlineExceeded, after an escalation context.Canceled,
// and context.Cause says which, for it and for the contexts derived from
// it. onEnd runs once, when the context ends (deadline or escalation).
//
// A worker's parent may bring the deadline forward once the shutdown has
// begun (shorten): never back.
//
// A late window's context (newWindowCtx) is the same, with its own cause
// at its deadline; release is its cancel function.
type shutdownCtx struct {
	base    context.Context // a cancelCtx: context.Cause reads the cause there
	cancel  context.CancelCauseFunc
	done    chan struct{} // closed after base is cancelled
	clock   clock
	timer   timer
	window  bool // a late window's
	expired atomic.Bool
	once    sync.Once
	onEnd   func()

	mu        sync.Mutex // guards what shorten changes
	armed     time.Time  // when arm ran
	timeout   time.Duration
	deadline  time.Time
	shortened chan struct{} // closed (and replaced) when shorten brings the deadline forward; made on first use
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
	c.mu.Lock()
	c.armed = c.clock.now()
	c.timeout, c.deadline = timeout, c.armed.Add(timeout)
	c.mu.Unlock()
	c.timer.Reset(timeout)
}

// shorten brings the deadline forward to timeout from now, if that is
// earlier than the deadline and the context has not ended; a later one
// never replaces it. It reports whether it did, and then wakes whoever
// waits on whenShortened.
func (c *shutdownCtx) shorten(timeout time.Duration) bool {
	c.mu.Lock()
	now := c.clock.now()
	end := now.Add(timeout)
	if c.base.Err() != nil || !end.Before(c.deadline) {
		c.mu.Unlock()
		return false
	}
	c.deadline, c.timeout = end, end.Sub(c.armed)
	c.timer.Reset(max(timeout, 0))
	if c.shortened != nil {
		close(c.shortened)
		c.shortened = nil
	}
	c.mu.Unlock()
	return true
}

// whenShortened returns a channel that is closed the next time shorten
// brings the deadline forward.
func (c *shutdownCtx) whenShortened() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shortened == nil {
		c.shortened = make(chan struct{})
	}
	return c.shortened
}

func (c *shutdownCtx) deadlinePassed() {
	c.mu.Lock()
	timeout := c.timeout
	c.mu.Unlock()
	if c.window {
		c.end(windowPassed(timeout), true)
		return
	}
	c.end(deadlinePassed(timeout), true)
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
	dl, _ := c.Deadline()
	return max(dl.Sub(c.clock.now()), 0)
}

func (c *shutdownCtx) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline, true
}

func (c *shutdownCtx) Done() <-chan struct{} { return c.done }

func (c *shutdownCtx) Value(key any) any { return c.base.Value(key) }

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

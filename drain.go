package multiexit

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"
)

// The drain: the stack run to its end under the shutdown's deadline, each
// hook abandoned and named if it overruns (drainer), and the context every
// hook gets (shutdownCtx).

// drainer runs a stack to its end under a deadline. Until the deadline,
// hooks run one after another on the goroutine that called run, and share
// ctx: a hook costs a function call, and a shutdown starts no goroutine.
// When the deadline passes (or the shutdown is escalated, which cancels
// ctx), whoever ends ctx calls takeover: the hook that is running is
// abandoned and named, and every remaining hook runs on its own goroutine
// with a context of its own that ends after window.
//
// Whoever runs the stack to its end calls exit: run's goroutine, a
// goroutine that resumed after a hook ended run's (runtime.Goexit, or Exit
// called from a hook), or takeover (which the runner calls itself if it
// finds ctx ended between two hooks).
type drainer struct {
	s      *stack
	ctx    context.Context
	window time.Duration
	// hardEnd, if set, bounds the late windows too: a worker's parent
	// kills it then. Guarded by s.mu once run began (see shortenHardEnd).
	hardEnd time.Time
	log     *slog.Logger
	trace   bool   // log every hook with its duration (Info level)
	exit    func() // called once the stack is empty; may be nil
	// clock is what the late windows and the durations are measured on;
	// the zero clock is the real one.
	clock clock
	// gone is closed if exit returns and the process goes on (a test's):
	// a runner that takeover overtook stops waiting then. Nil: never.
	gone <-chan struct{}
	// begun is when the drain began; run sets it if it is zero.
	begun time.Time

	// Guarded by s.mu, so that a hook costs one lock: the runner pops and
	// records what it runs in one critical section.
	overtaken bool          // takeover owns what is left
	ended     bool          // the stack was run to its end
	current   *Handle       // the hook the runner is in
	since     time.Duration // when current began, after begun: a read of the monotonic clock only
	back      chan struct{} // made by takeover while current runs; closed when the runner is back from it
}

// abandonSlack is how long a hook that is running when the deadline passes
// may take to return (as one that watches ctx does) before it is abandoned.
const abandonSlack = 50 * time.Millisecond

// killSlack is how long a Start entry that is running when the deadline
// passes may take, after the late window in which it SIGKILLs what is
// left, to reap its children and return (see takeover). It only bounds a
// child that SIGKILL cannot end (uninterruptible sleep).
const killSlack = time.Second

// run runs the stack on the calling goroutine. It returns after exit
// returned, or, when the deadline passed while a hook ran (takeover runs
// the rest elsewhere), once gone is closed.
func (d *drainer) run() {
	if d.clock.now == nil {
		d.clock = realClock
	}
	if d.begun.IsZero() {
		d.begun = d.clock.now()
	}
	d.s.mu.Lock()
	d.s.late = d.log
	d.s.mu.Unlock()
	d.loop()
}

// loop pops and runs hooks until the stack is empty or takeover owns it.
// Between two hooks it looks at ctx: if ctx has ended (the deadline passed
// before the first hook, or while the last one ran and takeover has not
// begun yet), loop takes over itself, so that no hook is handed a context
// that has ended.
func (d *drainer) loop() {
	s := d.s
	ended := d.ctx.Done()
	s.mu.Lock()
	for {
		if d.overtaken {
			s.mu.Unlock()
			<-d.gone // takeover runs the rest and exits
			return
		}
		if isClosed(ended) {
			s.mu.Unlock()
			d.takeover()
			return
		}
		h := s.popLocked()
		if h == nil {
			d.ended = true
			s.mu.Unlock()
			if d.exit != nil {
				d.exit()
			}
			return
		}
		d.current, d.since = h, d.clock.since(d.begun)
		s.mu.Unlock()
		d.call(d.ctx, h, true)
		s.mu.Lock()
		d.backFromHook()
	}
}

// isClosed reports whether c is closed, without blocking (false for nil).
func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// backFromHook records that the runner returned from its hook (or that the
// hook ended its goroutine). Called with d.s.mu held.
func (d *drainer) backFromHook() {
	d.current = nil
	if d.back != nil {
		close(d.back)
		d.back = nil
	}
}

// takeover runs when ctx ends. Unless the stack was run to its end, it
// abandons the running hook (after abandonSlack), runs what is left with
// the late window, and calls exit.
func (d *drainer) takeover() {
	d.s.mu.Lock()
	if d.ended || d.overtaken {
		d.s.mu.Unlock()
		return
	}
	d.overtaken = true
	cur, since := d.current, d.since
	var back chan struct{}
	if cur != nil {
		back = make(chan struct{})
		d.back = back
	}
	d.s.mu.Unlock()
	slack := abandonSlack
	if cur != nil && cur.stopsChildren {
		// A Start entry ends its children within the late window (see
		// stopChildren): wait for that, and the kill, so that the hooks
		// below it never run while they live. The kill and the reap take
		// a while on a loaded machine (over 50 ms seen with the suite run
		// three times at once on two cores): killSlack, not abandonSlack.
		slack = d.lateWindow() + killSlack
	}
	if cur != nil && d.returnsSoon(back, slack) {
		cur = nil // it watched its context and returned: not abandoned
	}
	if cur != nil {
		d.log.Error("multiexit: hook abandoned: it did not return before the shutdown deadline",
			"hook", cur.String(), "running", (d.clock.since(d.begun) - since).Round(time.Millisecond), "cause", context.Cause(d.ctx))
	}
	d.late()
	d.s.mu.Lock()
	d.ended = true
	d.s.mu.Unlock()
	if d.exit != nil {
		d.exit()
	}
}

// returnsSoon reports whether the runner is back from its hook (closes
// back) within slack.
func (d *drainer) returnsSoon(back <-chan struct{}, slack time.Duration) bool {
	expired, t := d.clock.after(slack)
	defer t.Stop()
	select {
	case <-back:
		return true
	case <-expired:
		return false
	}
}

// lateWindow is a hook's window after the deadline: window, cut to a
// worker's hard end (at least 10 ms).
func (d *drainer) lateWindow() time.Duration {
	d.s.mu.Lock()
	hardEnd := d.hardEnd
	d.s.mu.Unlock()
	if hardEnd.IsZero() {
		return d.window
	}
	return max(min(d.window, hardEnd.Sub(d.clock.now())), 10*time.Millisecond)
}

// shortenHardEnd brings the hard end forward to end, never back: a
// worker's parent gave it less time than it said before.
func (d *drainer) shortenHardEnd(end time.Time) {
	d.s.mu.Lock()
	if d.hardEnd.IsZero() || end.Before(d.hardEnd) {
		d.hardEnd = end
	}
	d.s.mu.Unlock()
}

// late runs what is left after the deadline, each hook with its own window.
func (d *drainer) late() {
	for {
		h := d.s.pop()
		if h == nil {
			return
		}
		window := d.lateWindow()
		ctx := newWindowCtx(d.clock, window)
		done := make(chan struct{})
		start := d.clock.now()
		go func() {
			defer close(done)
			d.call(ctx, h, false)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			d.log.Error("multiexit: hook abandoned: it did not return within its window after the shutdown deadline",
				"hook", h.String(), "running", d.clock.since(start).Round(time.Millisecond), "window", window)
		}
		ctx.release()
	}
}

// call runs one hook and reports its failure: an error, a panic, or an end
// of its goroutine. It never lets a panic through. A hook of loop's that
// ends its goroutine (runtime.Goexit, or Exit called from a hook) ends
// loop's too: a new goroutine goes on with the stack.
func (d *drainer) call(ctx context.Context, h *Handle, inLoop bool) {
	var start time.Time
	if d.trace {
		start = d.clock.now()
	}
	returned := false
	defer func() {
		if returned {
			return
		}
		if p := recover(); p != nil {
			d.log.Error("multiexit: hook panicked", "hook", h.String(), "panic", fmt.Sprint(p), "stack", string(stackTrace()))
			return
		}
		if d.trace {
			d.log.Info("multiexit: hook ended its goroutine", "hook", h.String(), "duration", d.clock.since(start))
		}
		if inLoop {
			d.s.mu.Lock()
			d.backFromHook()
			d.s.mu.Unlock()
			go d.loop()
		}
	}()
	err := h.hook(ctx)
	returned = true
	switch {
	case err != nil:
		d.log.Error("multiexit: hook failed", "hook", h.String(), "err", err)
	case d.trace:
		d.log.Info("multiexit: hook done", "hook", h.String(), "duration", d.clock.since(start))
	}
}

func stackTrace() []byte {
	buf := make([]byte, 16<<10)
	return buf[:runtime.Stack(buf, false)]
}

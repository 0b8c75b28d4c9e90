package multiexit

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"runtime"
	"sync"
	"time"
)

// Handle is one entry of the process's exit stack: a hook from Register or
// (*Shared[T]).Register. Its String method names the hook as the logs do.
type Handle struct {
	hook func(ctx context.Context) error
	// name is set for shared hooks and children; plain hooks are named
	// lazily from their function, so Register costs one allocation.
	name string
	// shared is what a worker inherits; nil for hooks of this process only.
	shared *sharedArg
	// group is set for the entry of one Start call.
	group *childGroup
}

// String names the hook: its Define name, the children it stops, or its
// function's name and source position.
func (h *Handle) String() string {
	if h == nil {
		return "<nil handle>"
	}
	if h.name != "" {
		return h.name
	}
	if h.group != nil {
		return h.group.String()
	}
	return funcName(h.hook)
}

func funcName(f any) string {
	v := reflect.ValueOf(f)
	if v.Kind() != reflect.Func || v.IsNil() {
		return "<nil hook>"
	}
	fn := runtime.FuncForPC(v.Pointer())
	if fn == nil {
		return "<unknown hook>"
	}
	file, line := fn.FileLine(fn.Entry())
	return fmt.Sprintf("%s (%s:%d)", fn.Name(), filepath.Base(file), line)
}

// stack is the per-process LIFO stack of exit hooks.
type stack struct {
	mu      sync.Mutex
	entries []*Handle
	drained bool // the stack was run to the end: the process is exiting
}

var exitStack stack

// Register pushes hook onto the process's exit stack and returns a handle
// that can take it off again. Hooks run newest first, each at most once, on
// every exit path that multiexit controls (see the package documentation).
//
// Register works before Install. A hook registered while the shutdown is
// running (from inside another hook, say) is the newest entry, so it runs
// next. A hook registered after the stack has been run to its end cannot run;
// that is logged. A nil hook is ignored: the returned handle's Unregister
// reports false.
func Register(hook func(ctx context.Context) error) *Handle {
	h := &Handle{hook: hook}
	if hook == nil {
		return h
	}
	exitStack.push(h)
	return h
}

// Unregister takes the hook off the stack. It reports true if it did, false
// if the hook had already run, was running, or was unregistered before.
// It is safe to call from any goroutine, including from inside a hook.
func (h *Handle) Unregister() bool {
	if h == nil {
		return false
	}
	return exitStack.remove(h)
}

func (s *stack) push(h *Handle) {
	s.mu.Lock()
	drained := s.drained
	if !drained {
		s.entries = append(s.entries, h)
	}
	s.mu.Unlock()
	if drained {
		rt.logger().Warn("multiexit: hook registered after the exit hooks ran; it will not run", "hook", h.String())
	}
}

// pushBottom puts hs below every entry, keeping their order (hs[0] lowest).
func (s *stack) pushBottom(hs []*Handle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = append(append(make([]*Handle, 0, len(hs)+len(s.entries)), hs...), s.entries...)
}

func (s *stack) remove(h *Handle) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.entries) - 1; i >= 0; i-- {
		if s.entries[i] == h {
			copy(s.entries[i:], s.entries[i+1:])
			s.entries[len(s.entries)-1] = nil
			s.entries = s.entries[:len(s.entries)-1]
			return true
		}
	}
	return false
}

// pop takes the newest entry. When the stack is empty it marks it drained,
// so that nothing registered later is silently kept.
func (s *stack) pop() *Handle {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.popLocked()
}

func (s *stack) popLocked() *Handle {
	n := len(s.entries)
	if n == 0 {
		s.drained = true
		return nil
	}
	h := s.entries[n-1]
	s.entries[n-1] = nil
	s.entries = s.entries[:n-1]
	return h
}

// snapshot returns the entries, oldest first.
func (s *stack) snapshot() []*Handle {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Handle(nil), s.entries...)
}

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
// called from a hook), or takeover.
type drainer struct {
	s      *stack
	ctx    context.Context
	window time.Duration
	// hardEnd, if set, bounds the late windows too: a worker's parent
	// kills it then.
	hardEnd time.Time
	log     *slog.Logger
	trace   bool   // log every hook with its duration (Info level)
	exit    func() // called once the stack is empty; may be nil

	// Guarded by s.mu, so that a hook costs one lock: the runner pops and
	// records what it runs in one critical section.
	overtaken bool    // takeover owns what is left
	ended     bool    // the stack was run to its end
	current   *Handle // the hook the runner is in
	begun     time.Time
	since     time.Duration // when current began, after begun: a read of the monotonic clock only
	finished  int           // hooks the runner has returned from
}

// abandonSlack is how long a hook that is running when the deadline passes
// may take to return (as one that watches ctx does) before it is abandoned.
const abandonSlack = 50 * time.Millisecond

// run runs the stack on the calling goroutine. It returns after exit
// returned, or never: when the deadline passed first, takeover runs the
// rest, and run's goroutine, back from its hook, waits for the process to
// exit.
func (d *drainer) run() {
	d.begun = time.Now()
	if d.ctx.Err() != nil { // the deadline passed before the first hook
		d.takeover()
		return
	}
	d.loop()
}

// loop pops and runs hooks until the stack is empty or takeover owns it.
func (d *drainer) loop() {
	s := d.s
	s.mu.Lock()
	for {
		if d.overtaken {
			s.mu.Unlock()
			select {} // takeover runs the rest and exits
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
		d.current, d.since = h, time.Since(d.begun)
		s.mu.Unlock()
		d.call(d.ctx, h, true)
		s.mu.Lock()
		if !d.overtaken {
			d.current = nil
		}
		d.finished++
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
	cur, since, finished := d.current, d.since, d.finished
	d.s.mu.Unlock()
	if cur != nil && d.returnsSoon(finished) {
		cur = nil // it watched its context and returned: not abandoned
	}
	if cur != nil {
		d.log.Error("multiexit: hook abandoned: it did not return before the shutdown deadline",
			"hook", cur.String(), "running", (time.Since(d.begun) - since).Round(time.Millisecond), "cause", context.Cause(d.ctx))
	}
	d.late()
	d.s.mu.Lock()
	d.ended = true
	d.s.mu.Unlock()
	if d.exit != nil {
		d.exit()
	}
}

// returnsSoon reports whether the running hook returns within abandonSlack.
func (d *drainer) returnsSoon(finished int) bool {
	end := time.Now().Add(abandonSlack)
	for time.Now().Before(end) {
		time.Sleep(time.Millisecond)
		d.s.mu.Lock()
		n := d.finished
		d.s.mu.Unlock()
		if n > finished {
			return true
		}
	}
	return false
}

// late runs what is left after the deadline, each hook with its own window.
func (d *drainer) late() {
	for {
		h := d.s.pop()
		if h == nil {
			return
		}
		window := d.window
		if !d.hardEnd.IsZero() {
			window = max(min(window, time.Until(d.hardEnd)), 10*time.Millisecond)
		}
		ctx, cancel := context.WithTimeoutCause(context.Background(), window,
			fmt.Errorf("multiexit: %v window after the shutdown deadline ran out", window))
		done := make(chan struct{})
		start := time.Now()
		go func() {
			defer close(done)
			d.call(ctx, h, false)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			d.log.Error("multiexit: hook abandoned: it did not return within its window after the shutdown deadline",
				"hook", h.String(), "running", time.Since(start).Round(time.Millisecond), "window", window)
		}
		cancel()
	}
}

// call runs one hook and reports its failure: an error, a panic, or an end
// of its goroutine. It never lets a panic through. A hook of loop's that
// ends its goroutine (runtime.Goexit, or Exit called from a hook) ends
// loop's too: a new goroutine goes on with the stack.
func (d *drainer) call(ctx context.Context, h *Handle, inLoop bool) {
	var start time.Time
	if d.trace {
		start = time.Now()
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
			d.log.Info("multiexit: hook ended its goroutine", "hook", h.String(), "duration", time.Since(start))
		}
		if inLoop {
			d.s.mu.Lock()
			if !d.overtaken {
				d.current = nil
			}
			d.finished++
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
		d.log.Info("multiexit: hook done", "hook", h.String(), "duration", time.Since(start))
	}
}

func stackTrace() []byte {
	buf := make([]byte, 16<<10)
	return buf[:runtime.Stack(buf, false)]
}

package multiexit

// Unit tests of the shutdown's logic, in this process, on fake effects:
// signals are delivered by the test, the clock moves only when the test
// fires one of its timers, and the end of the process is a record. What
// only real processes can show (dying by a signal, workers, containment)
// is tested by the scenarios of the other test files.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/multiexit/multiexit/internal/ctl"
	"github.com/multiexit/multiexit/internal/proctest"
	"github.com/oklog/run"
)

// fakeClock is a clock that moves only when a test fires one of its
// timers. Timers fire synchronously, in the order of their ends.
type fakeClock struct {
	mu     sync.Mutex
	armed  *sync.Cond // broadcast when a timer is armed
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c     *fakeClock
	d     time.Duration
	end   time.Time
	f     func()
	armed bool
}

func newFakeClock() *fakeClock {
	c := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	c.armed = sync.NewCond(&c.mu)
	return c
}

func (c *fakeClock) clock() clock {
	return clock{
		now:       c.Now,
		since:     func(t time.Time) time.Duration { return c.Now().Sub(t) },
		afterFunc: c.afterFunc,
	}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) afterFunc(d time.Duration, f func()) timer {
	t := &fakeTimer{c: c, f: f}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	t.Reset(d)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.armed = false
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.d, t.end, t.armed = d, t.c.now.Add(d), d > 0
	if d <= 0 {
		go t.f() // as time.AfterFunc: at once
	}
	t.c.armed.Broadcast()
	return was
}

// await waits until a timer of duration d is armed, and returns it.
func (c *fakeClock) await(d time.Duration) *fakeTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for _, t := range c.timers {
			if t.armed && t.d == d {
				return t
			}
		}
		c.armed.Wait()
	}
}

// fire moves the clock to t's end and fires every timer due by then.
func (c *fakeClock) fire(t *fakeTimer) {
	c.mu.Lock()
	if t.end.After(c.now) {
		c.now = t.end
	}
	var due []*fakeTimer
	for _, t := range c.timers {
		if t.armed && !t.end.After(c.now) {
			t.armed = false
			due = append(due, t)
		}
	}
	c.mu.Unlock()
	slices.SortStableFunc(due, func(a, b *fakeTimer) int { return a.end.Compare(b.end) })
	for _, t := range due {
		t.f()
	}
}

// awaitFire fires the next timer of duration d, once it is armed.
func (c *fakeClock) awaitFire(d time.Duration) { c.fire(c.await(d)) }

// ending is how the process would have ended.
type ending struct {
	code int
	sig  os.Signal
}

func (e ending) String() string { return fmt.Sprintf("code %d, signal %v", e.code, e.sig) }

// fakeOS is what a test's shutdown runs on.
type fakeOS struct {
	clock *fakeClock
	logs  proctest.Buffer
	log   *slog.Logger // the default logger: Warn and above, JSON
	trace *slog.Logger // for WithLogger: Info and above, JSON
	exits chan ending

	mu     sync.Mutex
	caught map[os.Signal][]chan<- os.Signal
}

func newFakeOS() *fakeOS {
	f := &fakeOS{clock: newFakeClock(), exits: make(chan ending, 4), caught: map[os.Signal][]chan<- os.Signal{}}
	f.log = slog.New(slog.NewJSONHandler(&f.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	f.trace = slog.New(slog.NewJSONHandler(&f.logs, nil))
	return f
}

func (f *fakeOS) effects() effects {
	return effects{
		catch: func(c chan<- os.Signal, sigs ...os.Signal) {
			f.mu.Lock()
			defer f.mu.Unlock()
			for _, s := range sigs {
				f.caught[s] = append(f.caught[s], c)
			}
		},
		exit:  func(code int, sig os.Signal) { f.exits <- ending{code, sig} },
		clock: f.clock.clock(),
		log:   f.log,
	}
}

// signal delivers sig as os/signal does: to every channel that catches
// it, dropped where a channel is full.
func (f *fakeOS) signal(sig os.Signal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.caught[sig] {
		select {
		case c <- sig:
		default:
		}
	}
}

// logged returns the log records with message msg.
func (f *fakeOS) logged(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// loggedOnce checks that msg was logged once, with the attributes want.
func (f *fakeOS) loggedOnce(t *testing.T, msg string, want map[string]any) {
	t.Helper()
	rs := f.logged(t, msg)
	if len(rs) != 1 {
		t.Errorf("logged %q %d times, want once; log:\n%s", msg, len(rs), f.logs.String())
		return
	}
	for k, v := range want {
		if got := rs[0][k]; got != v {
			t.Errorf("%q: %s = %v, want %v", msg, k, got, v)
		}
	}
}

// testShutdown is a shutdown on a fakeOS, installed, with a stack of its
// own.
type testShutdown struct {
	*shutdown
	os *fakeOS

	mu  sync.Mutex
	ran []string
}

func newTestShutdown(t *testing.T, opts ...Option) *testShutdown {
	t.Helper()
	return newTestShutdownOn(t, newFakeOS(), nil, opts...)
}

// newTestShutdownOn is newTestShutdown on f, for a worker if ctl is not
// nil.
func newTestShutdownOn(t *testing.T, f *fakeOS, ctl *workerControl, opts ...Option) *testShutdown {
	t.Helper()
	ts := &testShutdown{shutdown: newShutdown(f.effects(), new(stack)), os: f}
	cfg, err := newConfig(f.log, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !ts.claim(cfg) {
		t.Fatal("claim of a new shutdown failed")
	}
	if ts.claim(cfg) {
		t.Fatal("second claim succeeded")
	}
	sigs := cfg.signals
	if ctl != nil && !slices.Contains(sigs, os.Signal(syscall.SIGTERM)) {
		sigs = append(sigs, syscall.SIGTERM)
	}
	ts.listen(nil, sigs, ctl.link())
	t.Cleanup(func() {
		select {
		case <-ts.gone:
		default:
			t.Error("the shutdown did not end")
		}
	})
	return ts
}

// hook pushes a hook that records its name, then does do (if not nil).
func (ts *testShutdown) hook(name string, do func(ctx context.Context) error) *Handle {
	h := &Handle{name: name, hook: func(ctx context.Context) error {
		ts.mu.Lock()
		ts.ran = append(ts.ran, name)
		ts.mu.Unlock()
		if do != nil {
			return do(ctx)
		}
		return nil
	}}
	ts.stack.push(h)
	return h
}

// blocked is a hook that blocks until its context ends.
type blocked struct {
	in  chan struct{}
	ctx context.Context // the context it was given, once in is closed
}

// entered waits until the hook has been called.
func (b *blocked) entered() { <-b.in }

// blockingHook registers a hook named name that blocks until its context
// ends, then returns nil.
func (ts *testShutdown) blockingHook(name string) *blocked {
	b := &blocked{in: make(chan struct{})}
	ts.hook(name, func(ctx context.Context) error {
		b.ctx = ctx
		close(b.in)
		<-ctx.Done()
		return nil
	})
	return b
}

// exited waits for the end of the process and checks how it ended and
// which hooks ran, in which order.
func (ts *testShutdown) exited(t *testing.T, want ending, ran ...string) {
	t.Helper()
	got := <-ts.os.exits
	<-ts.gone
	if got != want {
		t.Errorf("the process ended with %v, want %v", got, want)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if diff := cmp.Diff(ran, ts.ran); diff != "" {
		t.Errorf("hooks ran (-want +got):\n%s", diff)
	}
}

var (
	byTERM = ending{128 + int(syscall.SIGTERM), syscall.SIGTERM}
	byINT  = ending{128 + int(syscall.SIGINT), syscall.SIGINT}
)

// release returns a channel that t's cleanup closes: a hook that must hang
// for the test waits on it, so that it ends after the test.
func release(t *testing.T) <-chan struct{} {
	c := make(chan struct{})
	t.Cleanup(func() { close(c) })
	return c
}

func TestPhaseString(t *testing.T) {
	for p, want := range map[phase]string{
		phaseRunning: "running", phaseDraining: "draining", phaseStopping: "stopping",
		phaseLate: "late", phaseExiting: "exiting", phase(9): "phase(9)",
	} {
		if got := p.String(); got != want {
			t.Errorf("phase %d: %q, want %q", int(p), got, want)
		}
	}
}

// The hooks run newest first, each once, with the shutdown's deadline, and
// the process ends by the signal that began the shutdown.
func TestShutdownRunsHooksNewestFirst(t *testing.T) {
	ts := newTestShutdown(t, WithTimeout(7*time.Second))
	t0 := ts.os.clock.Now()
	for _, name := range []string{"a", "b", "c"} {
		ts.hook(name, func(ctx context.Context) error {
			if dl, ok := ctx.Deadline(); !ok || !dl.Equal(t0.Add(7*time.Second)) {
				t.Errorf("%s: Deadline() = %v, %v; want %v", name, dl, ok, t0.Add(7*time.Second))
			}
			if ctx.Err() != nil {
				t.Errorf("%s: Err() = %v before the deadline", name, ctx.Err())
			}
			return nil
		})
	}
	if ts.begun() {
		t.Fatal("begun before any signal")
	}
	ts.os.signal(syscall.SIGTERM)
	<-ts.started
	ts.exited(t, byTERM, "c", "b", "a")
	if len(ts.os.logged(t, "multiexit: hook failed")) != 0 {
		t.Error("a hook was reported failed")
	}
}

// How the process ends: 128+signal and the signal, Exit's code (255 for
// one out of 0–255, logged), Run's main's 0, 1 or 2.
func TestShutdownExitCodes(t *testing.T) {
	errBroken := errors.New("broken")
	for _, tc := range []struct {
		name   string
		begin  func(ts *testShutdown)
		want   ending
		logged string // a message that must be logged once
	}{
		{name: "SIGTERM", begin: func(ts *testShutdown) { ts.os.signal(syscall.SIGTERM) }, want: byTERM},
		{name: "SIGINT", begin: func(ts *testShutdown) { ts.os.signal(syscall.SIGINT) }, want: byINT},
		{name: "Exit(0)", begin: func(ts *testShutdown) { go ts.exit(0) }, want: ending{0, nil}},
		{name: "Exit(3)", begin: func(ts *testShutdown) { go ts.exit(3) }, want: ending{3, nil}},
		{name: "Exit(255)", begin: func(ts *testShutdown) { go ts.exit(255) }, want: ending{255, nil}},
		{name: "Exit(256)", begin: func(ts *testShutdown) { go ts.exit(256) }, want: ending{255, nil},
			logged: "multiexit: Exit: exit codes are 0 to 255; exiting 255"},
		{name: "Exit(-1)", begin: func(ts *testShutdown) { go ts.exit(-1) }, want: ending{255, nil},
			logged: "multiexit: Exit: exit codes are 0 to 255; exiting 255"},
		{name: "ExitAs(nil)", begin: func(ts *testShutdown) { go ts.exitAs(nil) }, want: ending{1, nil},
			logged: "multiexit: ExitAs: no status of an ended process; exiting 1"},
		{name: "main returns nil", begin: func(ts *testShutdown) {
			go ts.run(func(context.Context) error { return nil })
		}, want: ending{0, nil}},
		{name: "main returns an error", begin: func(ts *testShutdown) {
			go ts.run(func(context.Context) error { return errBroken })
		}, want: ending{1, nil}, logged: "multiexit: main returned an error"},
		{name: "main panics", begin: func(ts *testShutdown) {
			go ts.run(func(context.Context) error { panic("boom") })
		}, want: ending{2, nil}, logged: "multiexit: main panicked"},
		{name: "main calls Goexit", begin: func(ts *testShutdown) {
			go ts.run(func(context.Context) error { runtime.Goexit(); return nil })
		}, want: ending{0, nil}, logged: "multiexit: Run's main ended its goroutine (runtime.Goexit) instead of returning; taken as a return of nil"},
		{name: "main returns an error after SIGTERM", begin: func(ts *testShutdown) {
			running := make(chan struct{})
			go ts.run(func(ctx context.Context) error {
				close(running)
				<-ctx.Done()
				var se *run.SignalError
				if !errors.As(context.Cause(ctx), &se) || se.Signal != syscall.SIGTERM {
					panic(fmt.Sprintf("main's context: cause %v, want the signal", context.Cause(ctx)))
				}
				return errBroken // the shutdown's, not a failure: not logged
			})
			<-running
			ts.os.signal(syscall.SIGTERM)
		}, want: byTERM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestShutdown(t)
			ts.hook("hook", nil)
			tc.begin(ts)
			ts.exited(t, tc.want, "hook")
			if tc.logged != "" {
				ts.os.loggedOnce(t, tc.logged, nil)
			}
			if tc.want.code != 1 && len(ts.os.logged(t, "multiexit: main returned an error")) != 0 {
				t.Error("main's error was logged")
			}
		})
	}
}

// The shutdown's beginning is logged before the process ends, also when
// the goroutine that began it (Exit's caller) is not the one that runs the
// hooks and ends the process.
func TestShutdownLogsItsBeginning(t *testing.T) {
	for range 20 {
		f := newFakeOS()
		ts := newTestShutdownOn(t, f, nil, WithLogger(f.trace))
		ts.hook("hook", nil)
		go ts.exit(3)
		ts.exited(t, ending{3, nil}, "hook")
		ts.os.loggedOnce(t, "multiexit: shutdown begins", map[string]any{"cause": "multiexit: Exit(3) called"})
	}
}

// A second signal while the hooks run brings the deadline to now: the
// running hook's context is cancelled (it returns, so it is not
// abandoned), each remaining hook runs once with a late window of its own,
// there is one escalation, and the process still ends by the first signal.
func TestShutdownEscalation(t *testing.T) {
	ts := newTestShutdown(t)
	t0 := ts.os.clock.Now()
	ts.hook("oldest", nil)
	ts.hook("late", func(ctx context.Context) error {
		if dl, ok := ctx.Deadline(); !ok || !dl.Equal(t0.Add(lateWindow)) {
			t.Errorf("late hook: Deadline() = %v, %v; want its window, %v", dl, ok, t0.Add(lateWindow))
		}
		if ctx.Err() != nil {
			t.Errorf("late hook: Err() = %v in its window", ctx.Err())
		}
		ts.os.signal(syscall.SIGINT) // a third signal: no second escalation
		return nil
	})
	running := ts.blockingHook("running")
	ts.os.signal(syscall.SIGTERM)
	running.entered()
	ts.os.signal(syscall.SIGINT)
	ts.exited(t, byTERM, "running", "late", "oldest")
	if running.ctx.Err() != context.Canceled {
		t.Errorf("the running hook's context: Err() = %v, want Canceled", running.ctx.Err())
	}
	if got, want := fmt.Sprint(context.Cause(running.ctx)), "multiexit: shutdown escalated by a second signal (interrupt)"; got != want {
		t.Errorf("the running hook's context: Cause = %q, want %q", got, want)
	}
	ts.os.loggedOnce(t, "multiexit: second signal during the shutdown: the deadline is now; each hook still to run gets a short window",
		map[string]any{"signal": "interrupt", "phase": "stopping"})
	if rs := ts.os.logged(t, "multiexit: hook abandoned: it did not return before the shutdown deadline"); len(rs) != 0 {
		t.Errorf("a hook that returned on its context's end was abandoned: %v", rs)
	}
}

// The first signal after a shutdown that Exit began (a batch job that exits
// as systemd stops it) is not an escalation: the running hook keeps its
// context; only a second signal escalates, and the process still ends with
// Exit's code.
func TestShutdownFirstSignalAfterExitIsNoEscalation(t *testing.T) {
	f := newFakeOS()
	ts := newTestShutdownOn(t, f, nil, WithLogger(f.trace))
	running := ts.blockingHook("running")
	go ts.exit(3)
	running.entered()
	ts.os.signal(syscall.SIGTERM) // the first signal: noted, no more
	ts.os.signal(syscall.SIGINT)  // the second: escalates
	ts.exited(t, ending{3, nil}, "running")
	if got, want := fmt.Sprint(context.Cause(running.ctx)), "multiexit: shutdown escalated by a second signal (interrupt)"; got != want {
		t.Errorf("Cause = %q, want %q", got, want)
	}
	ts.os.loggedOnce(t, "multiexit: signal during the shutdown: not an escalation, the shutdown did not begin by a signal; a second signal escalates",
		map[string]any{"signal": "terminated", "phase": "stopping"})
	ts.os.loggedOnce(t, "multiexit: second signal during the shutdown: the deadline is now; each hook still to run gets a short window",
		map[string]any{"signal": "interrupt"})
}

// In a worker, a repeated SIGTERM is not an escalation (the parent's stop
// and the kernel's parent-death signal can both deliver one); another
// caught signal is.
func TestShutdownWorkerRepeatedTERM(t *testing.T) {
	ts := newTestShutdownOn(t, newFakeOS(), &workerControl{ch: new(ctl.Worker)}, WithSignals(syscall.SIGHUP))
	running := ts.blockingHook("running")
	ts.os.signal(syscall.SIGTERM)
	running.entered()
	ts.os.signal(syscall.SIGTERM) // ignored
	ts.os.signal(syscall.SIGHUP)  // after it, on the same goroutine: escalates
	ts.exited(t, byTERM, "running")
	if got, want := fmt.Sprint(context.Cause(running.ctx)), "multiexit: shutdown escalated by a second signal (hangup)"; got != want {
		t.Errorf("Cause = %q, want %q", got, want)
	}
	ts.os.loggedOnce(t, "multiexit: second signal during the shutdown: the deadline is now; each hook still to run gets a short window",
		map[string]any{"signal": "hangup"})
}

// At the deadline the running hook's context ends (DeadlineExceeded, the
// deadline as cause); a hook that does not return within abandonSlack is
// abandoned and named; each remaining hook runs with a window of its own,
// and one that overruns it is abandoned and named in turn; the process
// ends by the signal.
func TestShutdownDeadline(t *testing.T) {
	ts := newTestShutdown(t, WithTimeout(20*time.Second))
	clk := ts.os.clock
	t0 := clk.Now()
	hang := release(t)
	entered, enteredLate := make(chan struct{}), make(chan struct{})
	var hung context.Context
	ts.hook("oldest", nil)
	ts.hook("overruns-its-window", func(ctx context.Context) error {
		close(enteredLate)
		<-hang
		return nil
	})
	ts.hook("in-a-window", func(ctx context.Context) error {
		want := t0.Add(20*time.Second + abandonSlack + lateWindow)
		if dl, ok := ctx.Deadline(); !ok || !dl.Equal(want) {
			t.Errorf("in-a-window: Deadline() = %v, %v; want %v", dl, ok, want)
		}
		return nil
	})
	ts.hook("hangs", func(ctx context.Context) error {
		hung = ctx
		close(entered)
		<-hang
		return nil
	})
	ts.os.signal(syscall.SIGTERM)
	<-entered
	clk.awaitFire(20 * time.Second) // the deadline
	<-hung.Done()
	if hung.Err() != context.DeadlineExceeded || context.Cause(hung) != deadlinePassed(20*time.Second) {
		t.Errorf("at the deadline: Err() = %v, Cause = %v; want DeadlineExceeded, %v", hung.Err(), context.Cause(hung), deadlinePassed(20*time.Second))
	}
	clk.awaitFire(abandonSlack) // "hangs" did not return: abandoned
	<-enteredLate
	clk.awaitFire(lateWindow) // "overruns-its-window" is abandoned
	ts.exited(t, byTERM, "hangs", "in-a-window", "overruns-its-window", "oldest")
	ts.os.loggedOnce(t, "multiexit: hook abandoned: it did not return before the shutdown deadline",
		map[string]any{"hook": "hangs", "cause": "multiexit: shutdown deadline (20s) passed", "running": float64(20*time.Second + abandonSlack)})
	ts.os.loggedOnce(t, "multiexit: hook abandoned: it did not return within its window after the shutdown deadline",
		map[string]any{"hook": "overruns-its-window", "window": float64(lateWindow), "running": float64(lateWindow)})
}

// A late window's context ends at its window with DeadlineExceeded and a
// cause that says so, and is bounded by the hard end a worker's parent
// gave it (but never below 10ms).
func TestDrainerLateWindow(t *testing.T) {
	for _, tc := range []struct {
		name    string
		hardEnd time.Duration // after now; 0: none
		want    time.Duration
	}{
		{"no hard end", 0, lateWindow},
		{"hard end before the window", 300 * time.Millisecond, 300 * time.Millisecond},
		{"hard end passed", -time.Second, 10 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			var st stack
			var got []context.Context
			for range 2 {
				st.push(&Handle{name: "hook", hook: func(ctx context.Context) error {
					got = append(got, ctx)
					return nil
				}})
			}
			over := newDeadlineCtx(clk.clock(), nil)
			over.end(errors.New("over"), true) // the deadline passed before the first hook
			d := &drainer{s: &st, ctx: over, window: lateWindow, log: newFakeOS().log, clock: clk.clock()}
			if tc.hardEnd != 0 {
				d.hardEnd = clk.Now().Add(tc.hardEnd)
			}
			d.run()
			for i, ctx := range got {
				if dl, ok := ctx.Deadline(); !ok || dl.Sub(clk.Now()) != tc.want {
					t.Errorf("hook %d: window %v, want %v", i, dl.Sub(clk.Now()), tc.want)
				}
				if ctx.Err() != context.Canceled {
					t.Errorf("hook %d: after the hook, Err() = %v, want Canceled", i, ctx.Err())
				}
			}
			c := newWindowCtx(clk.clock(), tc.want)
			clk.awaitFire(tc.want)
			<-c.Done()
			want := fmt.Sprintf("multiexit: %v window after the shutdown deadline ran out", tc.want)
			if c.Err() != context.DeadlineExceeded || fmt.Sprint(context.Cause(c)) != want {
				t.Errorf("at its end: Err() = %v, Cause = %v; want DeadlineExceeded, %q", c.Err(), context.Cause(c), want)
			}
		})
	}
}

// A runner that finds the context ended between two hooks, before anyone
// took over (the end's takeover runs on a goroutine of its own), takes
// over itself: the next hook gets a window of its own, never the context
// that has ended.
func TestDrainerTakesOverBetweenHooks(t *testing.T) {
	clk := newFakeClock()
	var st stack
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var errAtCall error
	var window time.Duration
	st.push(&Handle{name: "next", hook: func(ctx context.Context) error {
		errAtCall = ctx.Err()
		dl, _ := ctx.Deadline()
		window = dl.Sub(clk.Now())
		return nil
	}})
	st.push(&Handle{name: "ends-the-context", hook: func(context.Context) error {
		cancel(errors.New("escalated"))
		return nil
	}})
	exited := false
	d := &drainer{s: &st, ctx: ctx, window: lateWindow, log: newFakeOS().log, clock: clk.clock(), exit: func() { exited = true }}
	d.run() // no one else takes over: the runner must
	if !exited {
		t.Error("run returned before exit")
	}
	if errAtCall != nil || window != lateWindow {
		t.Errorf("the hook after the end: Err() = %v, window %v; want nil, %v", errAtCall, window, lateWindow)
	}
}

// A hook that fails, panics, calls Exit or ends its goroutine ends only
// itself: the rest run, each once, on time (before the deadline) or in
// their windows (after it), and the process ends the way the shutdown
// began.
func TestShutdownHookFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hook   func(ts *testShutdown) func(context.Context) error
		logged string
		attrs  map[string]any
	}{
		{"returns an error", func(*testShutdown) func(context.Context) error {
			return func(context.Context) error { return errors.New("broken") }
		}, "multiexit: hook failed", map[string]any{"hook": "x", "err": "broken"}},
		{"panics", func(*testShutdown) func(context.Context) error {
			return func(context.Context) error { panic("boom") }
		}, "multiexit: hook panicked", map[string]any{"hook": "x", "panic": "boom"}},
		{"calls Exit", func(ts *testShutdown) func(context.Context) error {
			return func(context.Context) error { ts.exit(9); return errors.New("Exit returned") }
		}, "multiexit: hook ended its goroutine", map[string]any{"hook": "x"}},
		{"calls runtime.Goexit", func(*testShutdown) func(context.Context) error {
			return func(context.Context) error { runtime.Goexit(); return errors.New("Goexit returned") }
		}, "multiexit: hook ended its goroutine", map[string]any{"hook": "x"}},
	} {
		for _, late := range []bool{false, true} {
			name := tc.name
			if late {
				name += " in a late window"
			}
			t.Run(name, func(t *testing.T) {
				f := newFakeOS()
				ts := newTestShutdownOn(t, f, nil, WithLogger(f.trace))
				ts.hook("oldest", nil)
				ts.hook("x", tc.hook(ts))
				ts.hook("newest", func(ctx context.Context) error {
					if late {
						ts.os.signal(syscall.SIGINT)
						<-ctx.Done()
					}
					return nil
				})
				ts.os.signal(syscall.SIGTERM)
				ts.exited(t, byTERM, "newest", "x", "oldest")
				ts.os.loggedOnce(t, tc.logged, tc.attrs)
				if n := len(ts.os.logged(t, "multiexit: hook done")); n != 2 {
					t.Errorf("%d hooks logged done, want 2", n)
				}
			})
		}
	}
}

// A hook that calls Exit when Exit began the shutdown does not change the
// exit code either.
func TestShutdownExitInsideExit(t *testing.T) {
	ts := newTestShutdown(t)
	ts.hook("exits", func(context.Context) error { ts.exit(4); return nil })
	go ts.exit(3)
	ts.exited(t, ending{3, nil}, "exits")
}

// Hooks may register and unregister hooks while the stack runs: a hook
// registered then runs next; an unregistered one does not run; a hook that
// runs or ran cannot be unregistered; a hook registered after the stack
// ran to its end is not kept, and that is logged.
func TestShutdownRegisterDuringDrain(t *testing.T) {
	ts := newTestShutdown(t)
	var c *Handle
	a := ts.hook("a", nil)
	var b *Handle
	b = ts.hook("b", func(context.Context) error {
		if !ts.stack.remove(a) {
			t.Error("b: unregistering a, which has not run: false")
		}
		if ts.stack.remove(b) {
			t.Error("b: unregistering itself, running: true")
		}
		if ts.stack.remove(c) {
			t.Error("b: unregistering c, which ran: true")
		}
		return nil
	})
	c = ts.hook("c", func(context.Context) error {
		ts.hook("registered-by-c", nil)
		return nil
	})
	ts.os.signal(syscall.SIGTERM)
	ts.exited(t, byTERM, "c", "registered-by-c", "b")
	ts.stack.push(&Handle{name: "too-late", hook: nopHookForTest})
	if n := len(ts.stack.snapshot()); n != 0 {
		t.Errorf("the stack kept %d hooks registered after it ran", n)
	}
	ts.os.loggedOnce(t, "multiexit: hook registered after the exit hooks ran; it will not run", map[string]any{"hook": "too-late"})
}

func nopHookForTest(context.Context) error { return nil }

// WithDrain: a signal closes Stopping at once while Run's main goes on
// serving; its context is cancelled after the drain delay, or at once on a
// second signal, which also brings the deadline forward.
func TestShutdownDrain(t *testing.T) {
	for _, second := range []bool{false, true} {
		t.Run(fmt.Sprint("second signal: ", second), func(t *testing.T) {
			ts := newTestShutdown(t, WithDrain(5*time.Second), WithTimeout(20*time.Second))
			serving := make(chan context.Context)
			go ts.run(func(ctx context.Context) error {
				serving <- ctx
				<-ctx.Done()
				return nil
			})
			mainCtx := <-serving
			var hookCtx context.Context
			ts.hook("hook", func(ctx context.Context) error { hookCtx = ctx; return nil })
			ts.os.signal(syscall.SIGTERM)
			<-ts.started
			drain := ts.os.clock.await(5 * time.Second)
			if mainCtx.Err() != nil {
				t.Fatalf("main's context ended during the drain: %v", context.Cause(mainCtx))
			}
			if second {
				ts.os.signal(syscall.SIGINT)
			} else {
				ts.os.clock.fire(drain)
			}
			ts.exited(t, byTERM, "hook")
			var se *run.SignalError
			if !errors.As(context.Cause(mainCtx), &se) || se.Signal != syscall.SIGTERM {
				t.Errorf("main's context: cause %v, want the signal", context.Cause(mainCtx))
			}
			if dl, _ := hookCtx.Deadline(); second != (dl.Sub(ts.os.clock.Now()) == lateWindow) {
				t.Errorf("the hook's window: %v; want the late window only after a second signal", dl.Sub(ts.os.clock.Now()))
			}
			// main returned as its context was cancelled: it is not said
			// not to have (it has abandonSlack, which the fake clock never
			// reaches).
			if rs := ts.os.logged(t, "multiexit: Run's main has not returned; running the exit hooks anyway"); len(rs) != 0 {
				t.Errorf("logged that main has not returned: %v", rs)
			}
		})
	}
}

// Exit from Run's main during the drain ends the drain (the hooks run at
// once; the process ends by the signal that began the shutdown), and the
// end of main's goroutine that it is is not logged as a runtime.Goexit.
// So does main returning: nothing serves any more.
func TestShutdownExitDuringDrain(t *testing.T) {
	for _, how := range []string{"Exit", "return"} {
		t.Run(how, func(t *testing.T) {
			ts := newTestShutdown(t, WithDrain(5*time.Second), WithTimeout(20*time.Second))
			go ts.run(func(ctx context.Context) error {
				<-ts.started // Stopping
				if how == "Exit" {
					ts.exit(0)
				}
				return nil
			})
			ts.hook("hook", nil)
			ts.os.signal(syscall.SIGTERM)
			// The drain's timer is never fired: only its end by main
			// lets the process end. The guard fails a drain that idles.
			select {
			case got := <-ts.os.exits:
				ts.os.exits <- got
			case <-time.After(time.Minute):
				t.Fatal("the drain did not end: the process did not end within a minute")
			}
			ts.exited(t, byTERM, "hook")
			if rs := ts.os.logged(t, "multiexit: Run's main ended its goroutine (runtime.Goexit) instead of returning; taken as a return of nil"); len(rs) != 0 {
				t.Errorf("Exit in main logged as a Goexit: %v", rs)
			}
		})
	}
}

// A signal while Run's main does not return: the hooks run after half of
// what is left of the deadline, and that is logged.
func TestShutdownMainDoesNotReturn(t *testing.T) {
	ts := newTestShutdown(t, WithTimeout(20*time.Second))
	hang := release(t)
	serving := make(chan struct{})
	go ts.run(func(ctx context.Context) error {
		close(serving)
		<-hang
		return nil
	})
	<-serving
	ts.hook("hook", nil)
	ts.os.signal(syscall.SIGTERM)
	ts.os.clock.awaitFire(10 * time.Second)
	ts.exited(t, byTERM, "hook")
	ts.os.loggedOnce(t, "multiexit: Run's main has not returned; running the exit hooks anyway", map[string]any{"waited": float64(10 * time.Second)})
}

// A signal that comes before Run's main has started (a worker's parent
// may stop it as soon as Install acknowledged): main still runs, with its
// context cancelled, the hooks wait for it, and the hooks it registers
// run. Before expectMain the finisher did not wait for a main it had not
// seen start: the hooks ran, and the process could end in main's middle.
func TestShutdownBeforeMainStarts(t *testing.T) {
	ts := newTestShutdown(t, WithTimeout(20*time.Second))
	ts.expectMain() // as Run's Install does, before it catches signals
	ts.hook("before", nil)
	ts.os.signal(syscall.SIGTERM)
	waiting := make(chan struct{})
	go func() { ts.os.clock.await(10 * time.Second); close(waiting) }()
	select {
	case e := <-ts.os.exits:
		t.Fatalf("the process ended (%v) before Run's main ran", e)
	case <-waiting: // the finisher waits for main
	}
	go ts.run(func(ctx context.Context) error {
		if ctx.Err() == nil {
			t.Error("main's context is not cancelled")
		}
		ts.hook("main's", nil)
		return nil
	})
	ts.exited(t, byTERM, "main's", "before")
}

// Install, then a signal, then Run once the hooks are running: main does
// not start beside them.
func TestShutdownMainAfterTheHooksBegan(t *testing.T) {
	ts := newTestShutdown(t, WithTimeout(20*time.Second))
	b := ts.blockingHook("blocking")
	ts.os.signal(syscall.SIGTERM)
	b.entered()
	notStarted := runLate(t, ts)
	ts.os.signal(syscall.SIGTERM) // the second signal abandons the blocking hook
	ts.exited(t, byTERM, "blocking")
	notStarted()
}

// runLate calls ts.run once the hooks run; the function it returns, called
// once the process ended, waits for run to end and fails t if main ran.
func runLate(t *testing.T, ts *testShutdown) func() {
	called := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		ts.run(func(ctx context.Context) error { close(called); return nil })
	}()
	return func() {
		t.Helper()
		<-ended
		select {
		case <-called:
			t.Error("Run's main ran while the hooks ran")
		default:
		}
	}
}

// Exit from another goroutine before Run's main started: the hooks do not
// wait for main, so main does not start beside them.
func TestShutdownExitBeforeMainStarts(t *testing.T) {
	ts := newTestShutdown(t, WithTimeout(20*time.Second))
	ts.expectMain()
	in, out := make(chan struct{}), make(chan struct{})
	ts.hook("holding", func(context.Context) error { close(in); <-out; return nil })
	go ts.exit(3)
	<-in
	notStarted := runLate(t, ts)
	close(out)
	ts.exited(t, ending{3, nil}, "holding")
	notStarted()
}

// A worker's begin allocates nothing: a worker's whole stop is its
// parent's, where the allocator's first use of a size class costs more
// than the hooks.
func TestWorkerBeginAllocatesNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "") // no service manager to tell
	const runs = 100
	ss := beginnable(runs + 1) // AllocsPerRun calls once more to warm up
	defer stopAll(ss)
	i := 0
	allocs := testing.AllocsPerRun(runs, func() {
		ss[i].begin(128+int(syscall.SIGTERM), syscall.SIGTERM, errWorkerStopped, bySignal)
		i++
	})
	if allocs != 0 {
		t.Errorf("a worker's begin: %v allocations, want 0", allocs)
	}
}

var errWorkerStopped = errors.New("stopped")

// beginnable makes n workers' shutdowns, on the real clock, ready to begin
// but with no finisher: begin only arms them.
func beginnable(n int) []*shutdown {
	fx := effects{exit: func(int, os.Signal) {}, clock: realClock, log: discardLogger()}
	ss := make([]*shutdown, n)
	for i := range ss {
		s := newShutdown(fx, new(stack))
		s.installed, s.running = true, true
		s.sc = newDeadlineCtx(fx.clock, nil)
		w := &workerControl{ch: new(ctl.Worker)}
		w.ch.Hear(ctl.BudgetLine(time.Now().Add(10 * time.Second))) // shortens the deadline
		s.worker = w
		ss[i] = s
	}
	return ss
}

func stopAll(ss []*shutdown) {
	for _, s := range ss {
		s.sc.timer.Stop()
	}
}

// BenchmarkBegin is a worker's begin: one op is one shutdown begun.
func BenchmarkBegin(b *testing.B) {
	const batch = 1024
	b.ReportAllocs()
	for i := 0; i < b.N; i += batch {
		b.StopTimer()
		ss := beginnable(min(batch, b.N-i))
		b.StartTimer()
		for _, s := range ss {
			s.begin(128+int(syscall.SIGTERM), syscall.SIGTERM, errWorkerStopped, bySignal)
		}
		b.StopTimer()
		stopAll(ss)
		b.StartTimer()
	}
}

// BenchmarkRunStackDeadline is BenchmarkRunStack with the shutdown's own
// context, armed, as finish runs the stack: one op is one hook.
func BenchmarkRunStackDeadline(b *testing.B) {
	saveStack(b)
	ctx := newDeadlineCtx(realClock, nil)
	ctx.arm(time.Hour)
	defer ctx.release()
	b.ReportAllocs()
	for i := 0; i < b.N; i += stackBatch {
		b.StopTimer()
		for range min(stackBatch, b.N-i) {
			Register(nopHook)
		}
		b.StartTimer()
		d := &drainer{s: &exitStack, ctx: ctx, window: lateWindow, log: discardLogger()}
		d.run()
		b.StopTimer()
		resetStack()
		b.StartTimer()
	}
}

// A worker's budget leaves room, after the deadline, to abandon a hook
// that overran it and to give the hooks after it a window before the hard
// end; the deadline keeps at least half of the budget.
func TestSplitBudget(t *testing.T) {
	for _, d := range []time.Duration{
		150 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 3 * time.Second, 5 * time.Second, 30 * time.Second,
	} {
		deadline, hard := splitBudget(d)
		if room := hard - deadline - abandonSlack; room < 20*time.Millisecond {
			t.Errorf("budget %v: deadline %v, hard end %v: %v left for the hooks after an abandoned one", d, deadline, hard, room)
		}
		if deadline < d/2 || hard > d {
			t.Errorf("budget %v: deadline %v, hard end %v", d, deadline, hard)
		}
	}
	if deadline, hard := splitBudget(0); deadline != 0 || hard != 0 {
		t.Errorf("budget 0: %v, %v", deadline, hard)
	}
}

// Install refuses options it cannot honour, naming them, instead of
// panicking on a nil one or arming a signal that cannot be caught.
func TestOptionsRefused(t *testing.T) {
	for _, tc := range []struct {
		opts []Option
		want string
	}{
		{[]Option{WithSignals(syscall.SIGTERM, os.Kill)}, "killed cannot be caught"},
		{[]Option{WithSignals(nil)}, "<nil> cannot be caught"},
		{[]Option{WithTimeout(time.Second), nil}, "option 2 is nil"},
		{[]Option{WithTimeout(0)}, "the shutdown deadline must be positive"},
	} {
		_, err := newConfig(slog.New(slog.DiscardHandler), tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("newConfig: %v, want an error containing %q", err, tc.want)
		}
	}
	if _, err := newConfig(slog.New(slog.DiscardHandler), []Option{WithSignals(syscall.SIGHUP)}); err != nil {
		t.Errorf("WithSignals(SIGHUP): %v", err)
	}
}

package multiexit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oklog/run"
)

// Defaults. DefaultTimeout stays below the 30 s that Kubernetes and
// `docker stop` wait before SIGKILL, so the hooks finish first.
const (
	DefaultTimeout = 20 * time.Second // WithTimeout
	DefaultGrace   = 5 * time.Second  // WithGrace
	// lateWindow bounds each hook that runs after the deadline passed.
	lateWindow = time.Second
)

// An Option configures Install or Run.
type Option func(*config)

type config struct {
	signals    []os.Signal
	signalsSet bool
	timeout    time.Duration
	grace      time.Duration
	log        *slog.Logger
	trace      bool
}

// WithSignals sets the signals that begin the shutdown (default SIGTERM and
// SIGINT). Naming SIGINT here also catches it when the process was started
// with SIGINT ignored (nohup, `sh -c 'prog &'`); by default such a SIGINT stays
// ignored. In a worker SIGINT is never caught: see IsChild.
func WithSignals(sigs ...os.Signal) Option {
	return func(c *config) { c.signals, c.signalsSet = append([]os.Signal(nil), sigs...), true }
}

// WithTimeout sets the shutdown deadline (default DefaultTimeout), counted
// from the moment the shutdown begins. Every hook's context carries it.
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithGrace sets how long a stopped child has between SIGTERM and SIGKILL
// (default DefaultGrace), bounded by the shutdown deadline.
func WithGrace(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.grace = d
		}
	}
}

// WithLogger sends multiexit's events to l: failures at Error and Warn, and
// the progress of a shutdown (each hook with its duration) at Info. Without
// it, multiexit prints only failures, to standard error.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log, c.trace = l, true
		}
	}
}

func defaultConfig() config {
	return config{
		signals: []os.Signal{syscall.SIGTERM, os.Interrupt},
		timeout: DefaultTimeout,
		grace:   DefaultGrace,
		log:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

// runtimeState is the process-wide state: one per process.
type runtimeState struct {
	mu        sync.Mutex
	installed bool
	cfg       config

	begun    bool
	code     int
	cause    error
	by       trigger       // what began the shutdown
	started  chan struct{} // closed when the shutdown begins
	sc       *shutdownCtx  // the hooks' context, made before the shutdown begins
	sig      signalSetup   // the caught signals, once Install set them up
	heard    bool          // the finisher has handed the signals to later
	finisher bool          // the goroutine that runs the shutdown was started
	drainer  *drainer      // the drainer running the stack, once there is one

	layer Layer

	runCancel context.CancelCauseFunc // Run's context
	mainDone  chan struct{}           // closed when Run's main returned
}

var rt = runtimeState{cfg: defaultConfig(), started: make(chan struct{})}

func (r *runtimeState) logger() *slog.Logger {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg.log
}

func (r *runtimeState) config() config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg
}

var errInstalled = errors.New("multiexit: Install called twice")

// Install arms the shutdown: the configured signals (SIGTERM and SIGINT by
// default) begin it, the exit hooks run newest first, and the process exits
// with 128+signal. Only the configured signals are caught.
//
// In a worker (see IsChild), Install also reads the registry its parent
// passed in MULTIEXIT, registers the inherited shared hooks at the bottom of
// the stack, ignores SIGINT (the parent orchestrates a terminal's Ctrl-C),
// watches for its parent's death (the end of the control channel, which on
// Linux the kernel turns into SIGTERM), and acknowledges its start to the
// parent.
// If anything in the registry is wrong, Install returns an error that says
// what and where, and changes nothing.
//
// Install returns an error if it is called twice.
func Install(opts ...Option) error {
	rt.mu.Lock()
	if rt.installed {
		rt.mu.Unlock()
		return errInstalled
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	rt.mu.Unlock()

	if err := checkDefines(); err != nil {
		return err
	}
	w, err := decodeWorker()
	if err != nil {
		return err
	}

	rt.mu.Lock()
	if rt.installed {
		rt.mu.Unlock()
		return errInstalled
	}
	rt.installed = true
	rt.cfg = cfg
	rt.mu.Unlock()
	layer := initContainment(cfg)
	rt.mu.Lock()
	rt.layer = layer
	rt.mu.Unlock()

	sigs := catchSignals(cfg, w != nil)
	var ctl *workerControl
	if w != nil {
		ctl = w.commit(slices.Contains(sigs, os.Signal(syscall.SIGTERM)))
	}
	if len(sigs) > 0 {
		ch := make(chan os.Signal, 8)
		signal.Notify(ch, sigs...)
		later := make(chan os.Signal, 8)
		go laterSignals(later, w != nil)
		rt.mu.Lock()
		rt.sig = signalSetup{first: ch, later: later, sigs: sigs, worker: w != nil}
		heard := rt.heard // Exit came first, and the finisher is past listening
		rt.mu.Unlock()
		if heard {
			rt.sig.hearLater()
		}
	}
	rt.mu.Lock()
	rt.prepareShutdown()
	rt.mu.Unlock()
	if ctl != nil {
		ctl.acknowledge()
	}
	return nil
}

// signalSetup is how the caught signals reach the shutdown. The finisher
// itself waits for the first one, so that a signal wakes one goroutine, as
// in a program that waits for it in main. Only once the shutdown has begun
// are the signals also sent to later, whose goroutine handles escalation;
// registering it then wakes no one.
type signalSetup struct {
	first  chan os.Signal // the finisher's
	later  chan os.Signal // laterSignals', registered when the shutdown begins
	sigs   []os.Signal
	worker bool
}

// hearLater sends the signals to later from now on, and handles those that
// came to first meanwhile. A signal that comes to both is handled twice,
// which is harmless: there is one escalation.
func (s signalSetup) hearLater() {
	if len(s.sigs) == 0 {
		return
	}
	signal.Notify(s.later, s.sigs...)
	for {
		select {
		case sig := <-s.first:
			laterSignal(sig, s.worker)
		default:
			return
		}
	}
}

// catchSignals is the set Install catches. SIGINT that the process was
// started with ignored stays ignored unless WithSignals names it; a worker
// never catches SIGINT.
func catchSignals(cfg config, worker bool) []os.Signal {
	var out []os.Signal
	for _, s := range cfg.signals {
		if s == os.Interrupt {
			if (worker && workerIgnoresInterrupt) || (!cfg.signalsSet && signal.Ignored(os.Interrupt)) {
				continue
			}
		}
		out = append(out, s)
	}
	return out
}

func signalCode(sig os.Signal) int {
	code := 128
	if s, ok := sig.(syscall.Signal); ok {
		code += int(s)
	}
	return code
}

// laterSignals handles the signals that arrive once the shutdown has begun.
func laterSignals(ch <-chan os.Signal, worker bool) {
	for sig := range ch {
		laterSignal(sig, worker)
	}
}

// laterSignal is a signal while the shutdown runs: an escalation, except a
// worker's repeated SIGTERM (the parent's stop and the kernel's Pdeathsig
// can both deliver one).
func laterSignal(sig os.Signal, worker bool) {
	if worker && sig == syscall.SIGTERM {
		return
	}
	escalate(sig)
}

var escalateOnce sync.Once

// escalate ends the shutdown deadline now: the running hook is abandoned
// and each remaining hook runs with the short window.
func escalate(sig os.Signal) {
	escalateOnce.Do(func() {
		rt.mu.Lock()
		sc, log := rt.sc, rt.cfg.log
		rt.mu.Unlock()
		log.Warn("multiexit: second signal during shutdown: abandoning the running hook; each remaining hook gets a short window",
			"signal", sig.String(), "window", lateWindow)
		if sc.end(fmt.Errorf("multiexit: shutdown escalated by a second signal (%v)", sig), false) {
			go takeover()
		}
	})
}

// takeover hands what is left of the stack to the late mode, once the
// shutdown context has ended (deadline or escalation).
func takeover() {
	rt.mu.Lock()
	d := rt.drainer
	rt.mu.Unlock()
	if d != nil {
		d.takeover()
	}
}

// prepareShutdown makes what beginning the shutdown needs, so that begin
// allocates nothing: in a worker, whose shutdown is the parent's stop, the
// allocator's first use of a size class and a fresh goroutine's stack
// growth cost more than the hooks. It starts the finisher, the goroutine
// that runs the shutdown. Called with rt.mu held.
func (r *runtimeState) prepareShutdown() {
	if r.sc == nil {
		r.sc = newShutdownCtx()
	}
	if !r.finisher {
		r.finisher = true
		go finisher(r.started, r.sig)
	}
}

// finisher waits for the first caught signal, which begins the shutdown,
// or for anything else to begin it (the parent's death, Exit, Run's main
// returning: they only call begin), and runs the shutdown. The hooks so
// run on a goroutine of multiexit's own, never on the caller's, whose
// deferred functions a hook that ends its goroutine would run.
func finisher(started <-chan struct{}, sig signalSetup) {
	select {
	case s := <-sig.first:
		if !begin(signalCode(s), &run.SignalError{Signal: s}, bySignal) {
			laterSignal(s, sig.worker) // begun meanwhile: this one is later
		}
	case <-started:
	}
	rt.mu.Lock()
	rt.heard, sig = true, rt.sig // Install may have set it up since
	rt.mu.Unlock()
	sig.hearLater()
	finish()
}

// trigger is what began the shutdown.
type trigger int

const (
	bySignal       trigger = iota // a caught signal
	byParentDeath                 // a worker's parent died
	byExit                        // Exit
	byMainReturned                // Run's main returned (or panicked)
)

// begin starts the shutdown once: it fixes the exit code and the cause,
// cancels Run's context, starts the deadline and wakes the finisher, which
// runs the hooks and exits. It reports false if the shutdown had already
// begun.
func begin(code int, cause error, by trigger) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.begun {
		return false
	}
	rt.begun, rt.code, rt.cause, rt.by = true, code, cause, by
	rt.prepareShutdown() // made at Install; here if Exit came first
	rt.sc.arm(rt.cfg.timeout)
	close(rt.started)
	if rt.runCancel != nil {
		rt.runCancel(cause)
	}
	if rt.cfg.trace {
		rt.cfg.log.Info("multiexit: shutdown begins", "cause", cause.Error(), "code", code, "deadline", rt.cfg.timeout)
	}
	return true
}

// shutdownCtx is the context the hooks get. It is made before the shutdown
// begins, with a stopped timer, so that beginning allocates nothing: arm
// sets the deadline and starts the timer. It behaves as
// context.WithDeadlineCause under context.WithCancelCause: at the deadline
// Err is context.DeadlineExceeded, after an escalation context.Canceled,
// and context.Cause says which, for it and for the contexts derived from
// it.
type shutdownCtx struct {
	base     context.Context // a cancelCtx: context.Cause reads the cause there
	cancel   context.CancelCauseFunc
	done     chan struct{} // closed after base is cancelled
	timer    *time.Timer
	timeout  time.Duration
	deadline time.Time
	expired  atomic.Bool
	once     sync.Once
}

func newShutdownCtx() *shutdownCtx {
	c := &shutdownCtx{done: make(chan struct{})}
	c.base, c.cancel = context.WithCancelCause(context.Background())
	c.timer = time.AfterFunc(time.Duration(1<<62), c.deadlinePassed)
	c.timer.Stop()
	return c
}

// arm starts the deadline. Called once, by begin, before the context is
// handed out.
func (c *shutdownCtx) arm(timeout time.Duration) {
	c.timeout, c.deadline = timeout, time.Now().Add(timeout)
	c.timer.Reset(timeout)
}

func (c *shutdownCtx) deadlinePassed() {
	if c.end(deadlinePassed(c.timeout), true) {
		takeover()
	}
}

// end ends the context with cause, once, and reports whether it did.
func (c *shutdownCtx) end(cause error, expired bool) bool {
	first := false
	c.once.Do(func() {
		first = true
		c.expired.Store(expired)
		c.cancel(cause) // before done: whoever sees done sees Err and Cause
		close(c.done)
	})
	return first
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
// shutdown, where fmt is cold code (page faults, a grown stack).
type deadlinePassed time.Duration

func (d deadlinePassed) Error() string {
	return "multiexit: shutdown deadline (" + time.Duration(d).String() + ") passed"
}

// finish runs the exit stack and exits; the finisher calls it once, after
// begin. If a signal or the parent's death began the shutdown, it first
// waits for Run's main to return, up to the deadline.
func finish() {
	rt.mu.Lock()
	sc, cfg, code, cause, by, mainDone := rt.sc, rt.cfg, rt.code, rt.cause, rt.by, rt.mainDone
	rt.mu.Unlock()
	start := time.Now()
	if by == byMainReturned && code == 1 {
		cfg.log.Error("multiexit: main returned an error", "err", cause)
	}
	if (by == bySignal || by == byParentDeath) && mainDone != nil {
		select {
		case <-mainDone:
		case <-sc.Done():
			cfg.log.Error("multiexit: Run's main did not return before the shutdown deadline; running the exit hooks",
				"cause", context.Cause(sc))
		}
	}
	d := &drainer{s: &exitStack, ctx: sc, window: lateWindow, log: cfg.log, trace: cfg.trace, exit: func() {
		closeContainment()
		if cfg.trace {
			cfg.log.Info("multiexit: exiting", "code", code, "duration", time.Since(start))
		}
		exitProcess(code)
	}}
	rt.mu.Lock()
	rt.drainer = d
	rt.mu.Unlock()
	d.run()
	select {} // the process exits from whoever ran the stack to its end
}

// exitProcess is os.Exit; a variable so that nothing else in the package
// calls os.Exit.
var exitProcess = os.Exit

// Exit runs the exit hooks, newest first, and exits with code. It never
// returns. It works without Install.
//
// If the shutdown has already begun (a signal, or an earlier Exit), Exit
// does not begin another: it ends the calling goroutine (runtime.Goexit), so
// a hook that calls Exit simply ends, and the exit code stays the one the
// shutdown began with.
func Exit(code int) {
	if !begin(code, fmt.Errorf("multiexit: Exit(%d) called", code), byExit) {
		runtime.Goexit()
	}
	select {} // the finisher runs the hooks and exits
}

// Run installs multiexit (unless Install was called) and runs main with a
// context that is cancelled when the shutdown begins; context.Cause tells
// why (a *run.SignalError, of github.com/oklog/run, for a signal). When main returns, or the shutdown
// began and main returned within the deadline, the exit hooks run and the
// process exits: 0 if main returned nil, 1 if it returned an error (which is
// logged), 2 if it panicked (the panic and its stack are logged), and
// 128+signal if a signal began the shutdown, whatever main returned. Run
// never returns. If Install fails, Run logs the error and exits with 1 after
// running the hooks registered so far.
//
// In a worker, Install acknowledges the start to the parent before main
// runs, and the parent may stop the worker at once: register the hooks that
// must run on such a stop before calling Run (in init, or at the top of the
// program's main).
func Run(main func(ctx context.Context) error, opts ...Option) {
	if err := Install(opts...); err != nil {
		if !errors.Is(err, errInstalled) {
			rt.logger().Error("multiexit: Install failed", "err", err)
			Exit(1)
		}
		if len(opts) > 0 {
			rt.logger().Warn("multiexit: Run's options are ignored: Install was already called")
		}
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan struct{})
	rt.mu.Lock()
	if rt.begun {
		cancel(rt.cause)
	}
	rt.runCancel, rt.mainDone = cancel, done
	rt.mu.Unlock()

	go func() {
		code, cause := 0, error(errMainReturned)
		returned := false
		defer func() {
			if !returned {
				if p := recover(); p != nil {
					code, cause = 2, fmt.Errorf("multiexit: main panicked: %v", p)
					rt.logger().Error("multiexit: main panicked", "panic", fmt.Sprint(p), "stack", string(stackTrace()))
				}
			}
			close(done)
			// After a signal, begin reports false: main's error is the
			// shutdown's, not a failure, and is not logged.
			begin(code, cause, byMainReturned)
		}()
		if err := main(ctx); err != nil {
			code, cause = 1, err
		}
		returned = true
	}()
	select {}
}

var errMainReturned = errors.New("multiexit: main returned")

// ShutdownActor returns an actor for github.com/oklog/run: execute blocks
// until the shutdown begins (a signal or Exit) and returns its cause;
// interrupt makes execute return nil. Add it to a run.Group so that a signal
// interrupts the group's other actors.
func ShutdownActor() (execute func() error, interrupt func(error)) {
	stop := make(chan struct{})
	var once sync.Once
	return func() error {
			select {
			case <-rt.started:
				rt.mu.Lock()
				defer rt.mu.Unlock()
				return rt.cause
			case <-stop:
				return nil
			}
		}, func(error) {
			once.Do(func() { close(stop) })
		}
}

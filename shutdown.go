package multiexit

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/oklog/run"

	"github.com/multiexit/multiexit/internal/sdnotify"
)

// The shutdown: one object per process (rt) that owns the phase, the
// configuration, the deadline, the drain, escalation and the end of the
// process. Its effects on the operating system (how signals reach it, the
// end of the process, the clock, the default logger) go through fx, so
// that its logic is tested in-process with fakes
// (shutdown_internal_test.go).

// phase is where the process is in its shutdown.
type phase int

const (
	phaseRunning  phase = iota // no shutdown yet
	phaseDraining              // a signal began it; Run's main still serves (WithDrain)
	phaseStopping              // the exit hooks run, inside the deadline
	phaseLate                  // the deadline passed or a second signal came: each remaining hook gets a short window
	phaseExiting               // the stack is empty: the process ends
)

func (p phase) String() string {
	switch p {
	case phaseRunning:
		return "running"
	case phaseDraining:
		return "draining"
	case phaseStopping:
		return "stopping"
	case phaseLate:
		return "late"
	case phaseExiting:
		return "exiting"
	}
	return "phase(" + fmt.Sprint(int(p)) + ")"
}

// trigger is what began the shutdown.
type trigger int

const (
	bySignal       trigger = iota // a caught signal
	byParentDeath                 // a worker's parent died
	byExit                        // Exit or ExitAs
	byMainReturned                // Run's main returned (or panicked)
	byRestartLimit                // a supervised child's restart limit (see Policy)
)

type shutdown struct {
	fx    effects
	stack *stack // the stack the shutdown runs
	// gone is closed if fx.exit returns (a test's fake does): the
	// goroutines that wait for the process to end then end themselves.
	gone chan struct{}

	mu        sync.Mutex
	installed bool
	phase     phase
	cfg       config

	code  int       // the exit code (128+signal after a signal)
	sig   os.Signal // the signal the process ends by, or nil
	cause error
	by    trigger

	started   chan struct{} // closed when the shutdown begins: Stopping
	drained   chan struct{} // closed when Run's context is cancelled, after the drain
	sc        *shutdownCtx  // the hooks' context, made before the shutdown begins
	signals   signalSetup   // the caught signals, once Install set them up
	listening bool          // the finisher has handed the signals to later
	running   bool          // the finisher goroutine was started
	drainer   *drainer      // the drainer running the stack, once there is one
	worker    parentLink    // a worker's link to its parent; nil in a parent
	runCancel context.CancelCauseFunc
	mainDone  chan struct{} // closed when Run's main returned; made by Run's Install, or by run
	mainShut  bool          // the finisher no longer waits for a main: none may start
	escalate  sync.Once
	hardEnd   time.Time     // a worker's: when its parent kills it (zero: unknown)
	signaled  int           // caught signals since the shutdown began, the one that began it included
	drainCut  chan struct{} // closed by Exit, or by Run's main returning: a drain ends
	cutOnce   sync.Once
}

// parentLink is what the shutdown asks of a worker's link to its parent
// (workerControl, in worker.go).
type parentLink interface {
	// budget is what the parent gave the worker when it stopped it (the
	// shortest it said), or, if the parent died, its deadline, counted
	// from when the worker first saw it die (as the guardian counts): the
	// deadline to keep and the hard end (when the parent, or its guardian,
	// kills it), both from now; zero if not known. It reads what the
	// parent said since it was last called.
	budget() (deadline, hard time.Duration, died bool)
	// deathCause is the shutdown's cause when the parent died.
	deathCause() error
}

// rt is the process's shutdown: it runs the process's stack, on the
// operating system.
var rt = newShutdown(osEffects(), &exitStack)

func newShutdown(fx effects, st *stack) *shutdown {
	return &shutdown{fx: fx, stack: st, gone: make(chan struct{}), cfg: defaultConfig(fx.log),
		started: make(chan struct{}), drained: make(chan struct{}), drainCut: make(chan struct{})}
}

func (s *shutdown) logger() *slog.Logger {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.log
}

func (s *shutdown) config() config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

func (s *shutdown) isInstalled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.installed
}

// claim makes cfg the configuration of an installed shutdown. It reports
// false if s was installed already.
func (s *shutdown) claim(cfg config) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.installed {
		return false
	}
	s.installed, s.cfg = true, cfg
	return true
}

// listen catches sigs (first, if not nil, is a channel that already
// catches some: a worker's SIGTERM, caught from package initialisation),
// makes ctl the worker's link to its parent (nil in a parent), and starts
// the finisher.
func (s *shutdown) listen(first chan os.Signal, sigs []os.Signal, ctl parentLink) {
	setup := newSignalSetup(s.fx.catch, first, sigs, s.laterSignal, s.gone)
	s.mu.Lock()
	s.signals, s.worker = setup, ctl
	listening := s.listening // Exit came first: the finisher is past listening
	s.prepare()
	s.mu.Unlock()
	if listening {
		setup.hearLater()
	}
}

// expectMain tells the finisher, before the signals are caught, that Run's
// main is about to run: a shutdown that begins before main has started
// (in a worker, its parent may stop it as soon as Install acknowledged)
// still waits for it.
func (s *shutdown) expectMain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mainDone == nil && !s.mainShut {
		s.mainDone = make(chan struct{})
	}
}

// begun reports whether the shutdown has begun.
func (s *shutdown) begun() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.phase != phaseRunning
}

// prepare makes what beginning the shutdown needs, so that begin allocates
// nothing: in a worker, whose shutdown is the parent's stop, the
// allocator's first use of a size class and a fresh goroutine's stack
// growth cost more than the hooks. It starts the finisher, the goroutine
// that runs the shutdown. Called with s.mu held.
func (s *shutdown) prepare() {
	if s.sc == nil {
		s.sc = newDeadlineCtx(s.fx.clock, s.takeover)
	}
	if !s.running {
		s.running = true
		go s.finisher(s.signals)
	}
}

// finisher waits for the first caught signal, which begins the shutdown,
// or for anything else to begin it (the parent's death, Exit, Run's main
// returning: they only call begin), and runs the shutdown. The hooks so run
// on a goroutine of multiexit's own, never on the caller's, whose deferred
// functions a hook that ends its goroutine would run.
func (s *shutdown) finisher(sig signalSetup) {
	select {
	case got := <-sig.first:
		if !s.begin(signalCode(got), got, &run.SignalError{Signal: got}, bySignal) {
			s.laterSignal(got) // begun meanwhile: this one is later
		}
	case <-s.started:
	}
	s.mu.Lock()
	s.listening, sig = true, s.signals // Install may have set them up since
	s.mu.Unlock()
	sig.hearLater()
	s.finish()
}

// begin starts the shutdown once: it fixes the exit code, the signal the
// process ends by and the cause, starts the deadline and the drain (or
// cancels Run's context), and wakes the finisher, which runs the hooks and
// ends the process. It reports false if the shutdown had already begun.
func (s *shutdown) begin(code int, sig os.Signal, cause error, by trigger) bool {
	s.mu.Lock()
	if s.phase != phaseRunning {
		s.mu.Unlock()
		return false
	}
	timeout := s.cfg.timeout
	var given time.Duration // what a worker's parent gave it
	if s.worker != nil {
		// However the shutdown begins, the parent's word holds: a stop
		// that came with this SIGTERM (or before this Exit), or its death.
		deadline, hard, died := s.worker.budget()
		if died && by == bySignal && sig == syscall.SIGTERM {
			by, cause = byParentDeath, s.worker.deathCause()
		}
		if deadline > 0 {
			s.hardEnd = s.fx.clock.now().Add(hard)
		}
		if deadline > 0 && deadline < timeout {
			timeout, given = deadline, deadline
		}
	}
	if by == bySignal {
		s.signaled = 1
	}
	drain := by == bySignal && s.cfg.drain > 0 && s.worker == nil
	s.code, s.sig, s.cause, s.by = code, sig, cause, by
	s.prepare() // made at Install; here if Exit came first
	s.sc.arm(timeout)
	s.phase = phaseStopping
	if drain {
		s.phase = phaseDraining
	} else {
		s.cancelRun()
	}
	log, trace, own := s.cfg.log, s.cfg.trace, s.cfg.timeout
	s.mu.Unlock()
	if trace {
		log.Info("multiexit: shutdown begins", "cause", cause.Error(), "code", code, "deadline", timeout)
		if given > 0 {
			log.Info("multiexit: this worker's deadline is shortened to fit the time its parent gives it", "deadline", timeout, "configured", own)
		}
	}
	notifyStopping(timeout)
	// Only now is the finisher woken (unless it called begin): the end of
	// the process must not overtake what is said above.
	close(s.started)
	return true
}

// stopMargin is added to the shutdown deadline in EXTEND_TIMEOUT_USEC: the
// exit itself, and the short windows of hooks that run after the deadline,
// take a moment more.
const stopMargin = time.Second

// notifyStopping tells the service manager that the shutdown has begun,
// and asks it to wait for the shutdown deadline plus a margin before it
// kills (EXTEND_TIMEOUT_USEC). Without NOTIFY_SOCKET it does nothing, and
// costs one environment lookup: it runs in every worker's shutdown.
func notifyStopping(deadline time.Duration) {
	if sdnotify.Enabled() {
		sdnotify.Stopping(deadline+stopMargin, "multiexit: shutting down (deadline "+deadline.String()+")")
	}
}

// cancelRun ends the drain: it cancels Run's context. Called with s.mu held.
func (s *shutdown) cancelRun() {
	select {
	case <-s.drained:
		return
	default:
	}
	close(s.drained)
	if s.runCancel != nil {
		s.runCancel(s.cause)
	}
}

// laterSignal is a signal while the shutdown runs. Only a second signal
// escalates: the first one after a shutdown that Exit, Run's main or the
// parent's death began (a batch job that exits as systemd stops it) is
// not. A worker's SIGTERM never escalates: it is its parent's stop, the
// kernel's word of its parent's death (Pdeathsig, and the control
// channel's end), or a line its parent wrote on the control channel (on
// Linux each comes as SIGTERM), any of which may give it less time.
func (s *shutdown) laterSignal(sig os.Signal) {
	s.mu.Lock()
	worker := s.worker != nil
	if worker && sig == syscall.SIGTERM {
		s.mu.Unlock()
		s.heardParent()
		return
	}
	s.signaled++
	n, log, trace, ph := s.signaled, s.cfg.log, s.cfg.trace, s.phase
	s.mu.Unlock()
	if n < 2 {
		if trace {
			log.Info("multiexit: signal during the shutdown: not an escalation, the shutdown did not begin by a signal; a second signal escalates",
				"signal", sig.String(), "phase", ph.String())
		}
		return
	}
	if ph >= phaseLate || s.sc.Err() != nil {
		return
	}
	s.escalate.Do(func() {
		// Logged before the end: the late mode may exit the process at
		// once.
		log.Warn("multiexit: second signal during the shutdown: the deadline is now; each hook still to run gets a short window",
			"signal", sig.String(), "phase", ph.String(), "window", lateWindow)
		s.sc.end(fmt.Errorf("multiexit: shutdown escalated by a second signal (%v)", sig), false)
	})
}

// heardParent applies, once a worker's shutdown has begun, what its parent
// said since: the budget of its stop, or its death. A deadline shorter
// than the one the worker keeps shortens it (the Start entry that is
// stopping the worker's own children passes the cut on to them), and the
// hard end moves forward with it; a longer one changes nothing. A worker
// whose shutdown began first (Exit, a SIGTERM from elsewhere, a whole
// unit signalled at once) so still fits the time its parent gives it.
func (s *shutdown) heardParent() {
	s.mu.Lock()
	if s.worker == nil || s.phase == phaseRunning || s.phase == phaseExiting {
		s.mu.Unlock()
		return
	}
	deadline, hard, died := s.worker.budget()
	if deadline <= 0 {
		s.mu.Unlock()
		return
	}
	hardEnd := s.fx.clock.now().Add(hard)
	if s.hardEnd.IsZero() || hardEnd.Before(s.hardEnd) {
		s.hardEnd = hardEnd
		if s.drainer != nil {
			s.drainer.shortenHardEnd(hardEnd)
		}
	}
	shortened := s.sc.shorten(deadline)
	log, trace, own := s.cfg.log, s.cfg.trace, s.cfg.timeout
	s.mu.Unlock()
	if shortened && trace {
		log.Info("multiexit: this worker's deadline is shortened to fit the time its parent gives it",
			"deadline", deadline, "configured", own, "parentDied", died)
	}
}

// cutDrain ends the drain (WithDrain), now or as soon as it begins: Exit
// was called, or Run's main returned.
func (s *shutdown) cutDrain() {
	s.cutOnce.Do(func() { close(s.drainCut) })
}

// takeover runs when the hooks' context ends (deadline or escalation): it
// hands what is left of the stack to the late mode.
func (s *shutdown) takeover() {
	s.mu.Lock()
	if s.phase < phaseLate {
		s.phase = phaseLate
	}
	d := s.drainer
	s.mu.Unlock()
	if d != nil {
		go d.takeover()
	}
}

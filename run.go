package multiexit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"

	"github.com/multiexit/multiexit/internal/contain"
	"github.com/multiexit/multiexit/internal/listenfd"
	"github.com/multiexit/multiexit/internal/osproc"
	"github.com/multiexit/multiexit/internal/sdnotify"
)

var errInstalled = errors.New("multiexit: Install called twice")

// Install arms the shutdown: the configured signals (SIGTERM and SIGINT by
// default) begin it, the exit hooks run newest first, and the process then
// dies by that signal (see the package documentation for where it exits
// with 128+signal instead). Only the configured signals are caught.
//
// In a worker (see IsChild), Install also reads the registry its parent
// passed in MULTIEXIT, registers the inherited shared hooks at the bottom of
// the stack, ignores SIGINT (the parent orchestrates a terminal's Ctrl-C;
// a worker that holds the terminal passes it on, see Foreground),
// catches SIGTERM whatever WithSignals says (the parent's stop, and the
// kernel's word of the parent's death), and acknowledges its start to the
// parent. A SIGTERM that came before Install is held until Install, so the
// worker's hooks still run.
//
// If an option has a value it cannot take, or anything in the registry is
// wrong, Install returns an error that says what and where, and changes
// nothing. Install returns an error if it is called twice.
func Install(opts ...Option) error { return install(false, opts) }

// install is Install; Run's (fromRun) catches the reload signal by default.
func install(fromRun bool, opts []Option) error {
	if rt.isInstalled() {
		return errInstalled
	}
	cfg, err := newConfig(rt.fx.log, opts)
	cfg.reload.byDefault(fromRun && !IsChild())
	if err == nil {
		err = checkDefines()
	}
	if err != nil {
		undoInit()
		return err
	}
	w, err := decodeWorker()
	if err != nil {
		return err
	}
	// The listeners the parent handed down (see Listen) get this
	// process's PID in LISTEN_PID, for multiexit/listen and libsystemd.
	if err := listenfd.Receive(); err != nil {
		cfg.log.Warn("multiexit: Install: the listeners passed to this process are not for it", "err", err)
	}
	if !rt.claim(cfg) {
		return errInstalled
	}
	if fromRun {
		rt.expectMain()
	}
	contain.Init(contain.Config{Timeout: cfg.timeout, Grace: cfg.grace, Log: cfg.log, Trace: cfg.trace,
		Executable: osproc.SelfExecutable, GuardianEnv: guardianEnv})

	var ctl *workerControl
	var first chan os.Signal
	parentGone := false
	if w != nil {
		ctl, parentGone = w.commit()
		first = asWorker.early
	}
	rt.listen(first, catchSignals(cfg, w != nil), ctl.link())
	listenReload(cfg)
	if parentGone {
		ctl.parentDied()
	}
	if ctl != nil {
		ctl.acknowledge()
	}
	return nil
}

// Exit runs the exit hooks, newest first, and exits with code. It never
// returns. It works without Install. Exit codes are 0 to 255: any other
// code is logged as an error and the process exits 255 (os.Exit would
// truncate 256 to 0, a success).
//
// If the shutdown has already begun (a signal, or an earlier Exit), Exit
// does not begin another: it ends the calling goroutine (runtime.Goexit), so
// a hook that calls Exit simply ends, and the process ends the way the
// shutdown began. During a drain (WithDrain) it also ends the drain: the
// hooks run at once, as Run's main returning would make them.
func Exit(code int) { rt.exit(code) }

// ExitAs runs the exit hooks, newest first, and then ends this process the
// way the process ps describes ended: with its exit code, or by the same
// signal (with 128+signal where a process cannot die by it: see the package
// documentation). It never returns. Use it to take a child's status as this
// process's own, as a wrapper or a shell does. A nil ps, or one of a process
// that has not exited, exits 1 after the hooks; that is logged. Like Exit, it
// ends only the calling goroutine if the shutdown has already begun.
func ExitAs(ps *os.ProcessState) { rt.exitAs(ps) }

// exit is Exit on s: it begins the shutdown with code (255 if code is not
// 0 to 255), or, if the shutdown has begun, ends the calling goroutine. It
// never returns.
func (s *shutdown) exit(code int) {
	if code < 0 || code > 255 {
		s.logger().Error("multiexit: Exit: exit codes are 0 to 255; exiting 255", "code", code)
		code = 255
	}
	s.exitBy(code, nil, fmt.Errorf("multiexit: Exit(%d) called", code))
}

// exitAs is ExitAs on s.
func (s *shutdown) exitAs(ps *os.ProcessState) {
	code, sig := osproc.EndOf(ps)
	if ps == nil || !ps.Exited() && sig == nil {
		s.logger().Error("multiexit: ExitAs: no status of an ended process; exiting 1", "state", fmt.Sprint(ps))
		code, sig = 1, nil
	}
	s.exitBy(code, sig, fmt.Errorf("multiexit: ExitAs(%v) called", ps))
}

// exitBy begins the shutdown for Exit or ExitAs and waits for the end of
// the process; if the shutdown has begun, it ends the calling goroutine
// instead, so that a hook that calls Exit simply ends.
func (s *shutdown) exitBy(code int, sig os.Signal, cause error) {
	if s.begin(code, sig, cause, byExit) {
		<-s.gone // the finisher runs the hooks and ends the process
	}
	s.cutDrain() // an Exit during the drain ends it: the hooks run now
	runtime.Goexit()
}

// Stopping returns a channel that is closed when the shutdown begins,
// before any drain delay (WithDrain) has passed: a readiness check should
// fail from then on while the program keeps serving.
func Stopping() <-chan struct{} { return rt.started }

// Run installs multiexit (unless Install was called) and runs main with a
// context that is cancelled when the shutdown begins (after the drain delay,
// if WithDrain set one); context.Cause tells why (a *run.SignalError, of
// github.com/oklog/run, for a signal). When main returns, or the shutdown
// began and main returned within half of what was left of the deadline, the
// exit hooks run and the process ends: exit 0 if main returned nil, 1 if it
// returned an error (which is logged), 2 if it panicked (the panic and its
// stack are logged), and by the signal if a signal began the shutdown,
// whatever main returned. A main that ends its goroutine with
// runtime.Goexit is logged and counts as returning nil. Run never returns.
// If Install fails, Run logs the error and exits with 1 after running the
// hooks registered so far.
//
// Run also catches SIGHUP, which reloads the supervised children (see
// Reload; WithReloadSignal chooses another signal, or none); Install alone
// does not, nor does Run in a worker (its parent reloads it by replacing
// it). A SIGHUP that is a shutdown signal (WithSignals) stays one.
//
// In a worker, Install acknowledges the start to the parent before main
// runs, and the parent may stop the worker at once: main still runs, with
// its context already cancelled, and the hooks wait for it as for any main
// (the hooks it registered run too). If Install was called before Run and
// the shutdown went on to the hooks in between, main does not run.
func Run(main func(ctx context.Context) error, opts ...Option) {
	if err := install(true, opts); err != nil {
		if !errors.Is(err, errInstalled) {
			rt.logger().Error("multiexit: Install failed", "err", err)
			Exit(1)
		}
		if len(opts) > 0 {
			rt.logger().Warn("multiexit: Run's options are ignored: Install was already called")
		}
	}
	rt.run(main)
}

var errMainReturned = errors.New("multiexit: main returned")

// run is Run on s, once installed: it runs main and begins the shutdown
// when main returns. It never returns.
func (s *shutdown) run(main func(ctx context.Context) error) {
	s.mu.Lock()
	done := s.mainDone
	if done == nil {
		if s.mainShut {
			// Install came before Run, and a shutdown that began in
			// between has gone on to the hooks without a main: main does
			// not start beside them.
			s.mu.Unlock()
			<-s.gone
			runtime.Goexit()
		}
		done = make(chan struct{})
		s.mainDone = done
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	select {
	case <-s.drained:
		cancel(s.cause)
	default:
	}
	s.runCancel = cancel
	s.mu.Unlock()

	go func() {
		code, cause := 0, error(errMainReturned)
		returned := false
		defer func() {
			if !returned {
				if p := recover(); p != nil {
					code, cause = 2, fmt.Errorf("multiexit: main panicked: %v", p)
					s.logger().Error("multiexit: main panicked", "panic", fmt.Sprint(p), "stack", string(stackTrace()))
				} else if !s.begun() {
					s.logger().Warn("multiexit: Run's main ended its goroutine (runtime.Goexit) instead of returning; taken as a return of nil")
				}
				// Once the shutdown has begun, that is how Exit ends
				// the goroutine that calls it (see Exit): nothing to say.
			}
			close(done)
			s.cutDrain() // during a drain: nothing serves any more
			// After a signal, begin reports false: main's error is the
			// shutdown's, not a failure, and is not logged.
			s.begin(code, nil, cause, byMainReturned)
		}()
		if err := main(ctx); err != nil {
			code, cause = 1, err
		}
		returned = true
	}()
	<-s.gone // the finisher runs the hooks and ends the process
	runtime.Goexit()
}

// ShutdownActor returns an actor for github.com/oklog/run: execute blocks
// until the shutdown begins (a signal or Exit; after a signal, once the
// drain delay of WithDrain has passed) and returns its cause; interrupt
// makes execute return nil. Add it to a run.Group so that a signal
// interrupts the group's other actors.
func ShutdownActor() (execute func() error, interrupt func(error)) {
	stop := make(chan struct{})
	var once sync.Once
	return func() error {
			select {
			case <-rt.drained:
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

// Ready tells the service manager that this program is ready: under
// systemd (NOTIFY_SOCKET is set, as for a Type=notify unit) it sends
// READY=1, in one call, and systemctl start returns. Call it once the
// program serves, for example after Start returned (every worker has
// acknowledged Install). Without NOTIFY_SOCKET it does nothing and returns
// nil, so a program can call it unconditionally; it works without Install,
// on every platform.
//
// multiexit itself tells systemd when the shutdown begins (STOPPING=1), and
// extends systemd's stop timeout (TimeoutStopSec) to the shutdown deadline
// (WithTimeout), so that systemd does not kill a shutdown that is still
// inside it. Workers and other children do not inherit NOTIFY_SOCKET, the
// socket-activation variables (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES) nor
// the watchdog's (WATCHDOG_PID, WATCHDOG_USEC) this process was given:
// only this process speaks to systemd.
func Ready() error {
	return sdnotify.Ready()
}

package multiexit

import (
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/multiexit/multiexit/internal/contain"
	"github.com/multiexit/multiexit/internal/errout"
	"github.com/multiexit/multiexit/internal/osproc"
)

// The shutdown's effects on the operating system, passed in so that its
// logic is tested in-process with fakes (shutdown_internal_test.go): how
// the caught signals reach it, how the process ends, the clock, and the
// logger it reports to without WithLogger. rt has the real ones.

// effects are what the shutdown does to the operating system: a small
// struct of functions, as cloudflare/tableflip's env.
type effects struct {
	// catch makes the signals sigs reach c, as signal.Notify does.
	catch func(c chan<- os.Signal, sigs ...os.Signal)
	// exit ends the process once the hooks ran: it closes the containment,
	// then ends the process by the signal sig if it is not nil and the
	// platform allows it (see osproc.End), else with code. The real one
	// does not return.
	exit func(code int, sig os.Signal)
	// clock is what the deadline, the drain delay and the late windows
	// run on.
	clock clock
	// log is where multiexit reports without WithLogger.
	log *slog.Logger
}

// osEffects are the real effects, rt's.
func osEffects() effects {
	return effects{
		catch: signal.Notify,
		exit: func(code int, sig os.Signal) {
			contain.Close()
			osproc.End(code, sig)
		},
		clock: realClock,
		// Failures only, to standard error.
		log: slog.New(slog.NewTextHandler(&errout.Writer{}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

// clock is the time the shutdown reads and waits on.
type clock struct {
	now func() time.Time
	// since is time.Since: with a time.Time from now it reads the
	// monotonic clock only (the drainer reads it for every hook).
	since func(time.Time) time.Duration
	// afterFunc calls f in its own goroutine after d, as time.AfterFunc.
	afterFunc func(d time.Duration, f func()) timer
}

// timer is what clock.afterFunc returns; *time.Timer is one.
type timer interface {
	Stop() bool
	Reset(d time.Duration) bool
}

var realClock = clock{
	now:       time.Now,
	since:     time.Since,
	afterFunc: func(d time.Duration, f func()) timer { return time.AfterFunc(d, f) },
}

// after returns a channel that is closed after d, and its timer.
func (c clock) after(d time.Duration) (<-chan struct{}, timer) {
	ch := make(chan struct{})
	return ch, c.afterFunc(d, func() { close(ch) })
}

// signalSetup is how the caught signals reach the shutdown. The finisher
// itself waits for the first one, so that a signal wakes one goroutine, as
// in a program that waits for it in main. Only once the shutdown has begun
// (hearLater) does a second goroutine take the signals that come to the same
// channel, and handle them (escalation); until then it waits, and wakes no
// one. One channel, so that each signal is handled once: a count of
// signals (only a second one escalates) must not see one signal twice.
type signalSetup struct {
	first chan os.Signal // the finisher's, then the later goroutine's
	sigs  []os.Signal
	hear  func() // lets the later goroutine take first's signals; once
}

// newSignalSetup catches sigs through catch; handle gets those that come
// once the shutdown has begun, until quit is closed. first may be a channel
// that already catches some signals (a worker's SIGTERM, caught from
// package initialisation).
func newSignalSetup(catch func(chan<- os.Signal, ...os.Signal), first chan os.Signal, sigs []os.Signal, handle func(os.Signal), quit <-chan struct{}) signalSetup {
	if first == nil {
		first = make(chan os.Signal, 8)
	}
	if len(sigs) > 0 { // signal.Notify with no signals would catch them all
		catch(first, sigs...)
	}
	heard := make(chan struct{})
	go func() {
		select {
		case <-heard:
		case <-quit:
			return
		}
		for {
			select {
			case sig := <-first:
				handle(sig)
			case <-quit:
				return
			}
		}
	}()
	return signalSetup{first: first, sigs: sigs, hear: sync.OnceFunc(func() { close(heard) })}
}

// hearLater hands the signals that come from now on, and those that came
// to first meanwhile, to the goroutine that handles them.
func (s signalSetup) hearLater() {
	if s.hear != nil {
		s.hear()
	}
}

// catchSignals is the set Install catches. SIGINT that the process was
// started with ignored stays ignored unless WithSignals names it. A worker
// never catches SIGINT (its parent orchestrates a terminal's Ctrl-C), and
// always catches SIGTERM (its parent's stop, and its parent's death).
func catchSignals(cfg config, worker bool) []os.Signal {
	var out []os.Signal
	term := false
	for _, s := range cfg.signals {
		switch {
		case s == os.Interrupt && worker:
			continue
		case s == os.Interrupt && !cfg.signalsSet && signal.Ignored(os.Interrupt):
			continue
		case s == syscall.SIGTERM:
			term = true
		}
		out = append(out, s)
	}
	if worker && !term {
		out = append(out, syscall.SIGTERM)
	}
	return out
}

// signalCode is 128+signal, the exit code of a process that a signal ended
// where it cannot die by that signal.
func signalCode(sig os.Signal) int {
	code := 128
	if s, ok := sig.(syscall.Signal); ok {
		code += int(s)
	}
	return code
}

package multiexit

import (
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/multiexit/multiexit/internal/contain"
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
	// platform allows it (see endProcess), else with code. The real one
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
			endProcess(code, sig)
		},
		clock: realClock,
		// Failures only, to standard error.
		log: slog.New(slog.NewTextHandler(&stderrLog{}, &slog.HandlerOptions{Level: slog.LevelWarn})),
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

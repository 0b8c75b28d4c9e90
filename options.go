package multiexit

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/multiexit/multiexit/internal/osproc"
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
	drain      time.Duration
	log        *slog.Logger
	trace      bool
	errs       []error // options given values they cannot take; Install reports them

	reload reloadConfig // WithReloadSignal, WithReloadEvents (reload.go)
}

// WithSignals sets the signals that begin the shutdown (default SIGTERM and
// SIGINT). Naming SIGINT here also catches it when the process was started
// with SIGINT ignored (nohup, `sh -c 'prog &'`); by default such a SIGINT stays
// ignored. In a worker SIGINT is never caught, and SIGTERM always is, named
// or not: it is how the parent stops the worker and how the kernel reports
// the parent's death (see IsChild). SIGKILL and SIGSTOP cannot be caught:
// Install refuses them.
func WithSignals(sigs ...os.Signal) Option {
	for _, s := range sigs {
		if s == nil || osproc.Uncatchable(s) {
			return refused(fmt.Errorf("multiexit: WithSignals(%v): %v cannot be caught", sigs, s))
		}
	}
	return func(c *config) { c.signals, c.signalsSet = append([]os.Signal(nil), sigs...), true }
}

// WithTimeout sets the shutdown deadline (default DefaultTimeout), counted
// from the moment the shutdown begins; it includes the drain delay
// (WithDrain). Every hook's context carries it. It must be positive:
// Install refuses anything else.
//
// In a worker the deadline is also bounded by the time its parent gives it
// when it stops the worker (what is left of the parent's grace period and
// deadline), or by the parent's deadline if the parent dies: the worker
// shortens its own to fit, also when its own shutdown began first, and
// says so in its log. A longer time from the parent never lengthens it.
func WithTimeout(d time.Duration) Option {
	if d <= 0 {
		return refused(fmt.Errorf("multiexit: WithTimeout(%v): the shutdown deadline must be positive", d))
	}
	return func(c *config) { c.timeout = d }
}

// WithGrace sets how long a stopped child has between SIGTERM and SIGKILL
// (default DefaultGrace). Zero means SIGKILL at once; a negative grace is
// refused by Install. The grace a child really gets is bounded by the
// shutdown: at most half of what is left of the deadline when its entry's
// turn comes, so that the hooks below the entry still have time (see "One
// budget for the tree" in the package documentation).
func WithGrace(d time.Duration) Option {
	if d < 0 {
		return refused(fmt.Errorf("multiexit: WithGrace(%v): the grace period cannot be negative (0 means SIGKILL at once)", d))
	}
	return func(c *config) { c.grace = d }
}

// WithDrain sets a drain delay for a shutdown begun by a signal (default
// 0: none). Stopping is closed at once, so a readiness check can fail, while
// Run's main keeps serving for d; only then is its context cancelled and the
// ordered stop run. This is what a Kubernetes pod needs: after SIGTERM,
// requests keep arriving for a few seconds while the endpoints are updated.
// The drain counts against the shutdown deadline (WithTimeout), which must
// be longer than d; Install refuses it otherwise. Exit and Run's main
// returning do not drain; during a drain either ends it at once, and so
// does a second signal.
func WithDrain(d time.Duration) Option {
	if d < 0 {
		return refused(fmt.Errorf("multiexit: WithDrain(%v): the drain delay cannot be negative", d))
	}
	return func(c *config) { c.drain = d }
}

// refused is an option that Install reports as err.
func refused(err error) Option {
	return func(c *config) { c.errs = append(c.errs, err) }
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

// defaultConfig is the configuration without options; log is where
// multiexit reports failures without WithLogger.
func defaultConfig(log *slog.Logger) config {
	return config{
		signals: []os.Signal{syscall.SIGTERM, os.Interrupt},
		timeout: DefaultTimeout,
		grace:   DefaultGrace,
		log:     log,
	}
}

// newConfig applies opts to the defaults and checks the result.
func newConfig(log *slog.Logger, opts []Option) (config, error) {
	cfg := defaultConfig(log)
	for i, o := range opts {
		if o == nil {
			cfg.errs = append(cfg.errs, fmt.Errorf("multiexit: option %d is nil", i+1))
			continue
		}
		o(&cfg)
	}
	if cfg.drain > 0 && cfg.drain >= cfg.timeout {
		cfg.errs = append(cfg.errs, fmt.Errorf("multiexit: WithDrain(%v) must be shorter than the shutdown deadline (WithTimeout %v), which includes it", cfg.drain, cfg.timeout))
	}
	if len(cfg.errs) > 0 {
		return cfg, errors.Join(cfg.errs...)
	}
	return cfg, nil
}

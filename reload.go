package multiexit

// Reload: a new generation of every supervised child, from the binary on
// disk, ready before the old generation stops in order; rolled back when
// it fails.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/multiexit/multiexit/internal/osproc"
	"github.com/multiexit/multiexit/internal/sdnotify"
)

// ErrReloadInProgress is returned by Reload while another Reload runs.
// Reloads are not queued nor merged: the caller decides whether to try
// again once the running one has returned.
var ErrReloadInProgress = errors.New("multiexit: Reload: a reload is in progress")

// ErrStopping is returned by Reload once the shutdown has begun (Stopping
// is closed): a reload is refused, or, begun before, ends without putting
// its new generation in place; the shutdown stops both generations.
var ErrStopping = errors.New("multiexit: Reload: the shutdown has begun")

// generationVar tells a supervised child its generation (see Generation).
const generationVar = "MULTIEXIT_GENERATION"

// Generation says which generation of its pool this process's supervised
// children belong to: 1, plus one for each Reload that succeeded in this
// process. In a supervised child it says, likewise, which generation the
// child was started in (its parent's, at its start: restarts keep it); in
// any other child it is 1 (plus its own reloads).
func Generation() int {
	base := 1
	if n, err := strconv.Atoi(os.Getenv(generationVar)); err == nil && n > 0 {
		base = n
	}
	reloads.mu.Lock()
	defer reloads.mu.Unlock()
	return base + reloads.done
}

// A ReloadEvent is what WithReloadEvents reports of a Reload.
type ReloadEvent struct {
	Generation int   // the new generation, the one being started
	Children   int   // how many new processes it started (on a failure: before it failed)
	Err        error // nil: the new generation is ready and serves; the old one is stopped next
	// Done: the reload is over, the old generation gone; a new Reload
	// can begin. Reported after the event with Err nil.
	Done bool
	Took time.Duration // from the Reload's start to the event
}

// WithReloadSignal sets the signal that makes this process Reload (Run's
// default: SIGHUP, except in a worker; Install's: none). nil turns it off
// (SIGHUP then has its default action, which kills the process without its
// hooks: add it to WithSignals to make it a shutdown signal). The reload runs in
// the background; its failure, or its refusal (ErrReloadInProgress,
// ErrStopping), is logged. A signal that is also a shutdown signal
// (WithSignals) begins the shutdown and does not reload. Unix only: on
// Windows nothing sends it.
func WithReloadSignal(sig os.Signal) Option {
	if sig != nil && osproc.Uncatchable(sig) {
		return refused(fmt.Errorf("multiexit: WithReloadSignal(%v): it cannot be caught", sig))
	}
	return func(c *config) { c.reload.sig, c.reload.set = sig, true }
}

// WithReloadEvents makes every Reload call f, on Reload's goroutine, once
// its new generation is ready (Err nil), before the old one is stopped,
// and again once the old one is gone (Done), or once it failed and was
// rolled back (Err says why; a new Reload can begin). f must not call
// Reload.
func WithReloadEvents(f func(ReloadEvent)) Option {
	return func(c *config) { c.reload.events = f }
}

type reloadConfig struct {
	sig    os.Signal
	set    bool // WithReloadSignal was given
	events func(ReloadEvent)
}

// byDefault gives Run's default reload signal, SIGHUP, unless
// WithReloadSignal chose.
func (r *reloadConfig) byDefault(fromRun bool) {
	if fromRun && !r.set {
		r.sig = syscall.SIGHUP
	}
}

// listenReload catches cfg's reload signal, unless it is a shutdown
// signal, and reloads at each.
func listenReload(cfg config) {
	sig := cfg.reload.sig
	if sig == nil || slices.Contains(cfg.signals, sig) {
		return
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sig)
	go func() {
		for {
			select {
			case <-ch:
				go func() {
					if err, ok := reloadOnce(context.Background()).(notBegun); ok {
						rt.logger().Warn("multiexit: reload signal ignored", "signal", sig, "err", err.err)
					}
				}()
			case <-rt.gone:
				signal.Stop(ch)
				return
			}
		}
	}()
}

// reloads are the supervised children a Reload replaces, and its state.
var reloads reloadState

type reloadState struct {
	mu      sync.Mutex
	sups    []*supervisor // every supervision not finished, in the order of their Start
	running bool
	done    int // reloads that succeeded
}

// add and remove keep the list of supervisions a Reload replaces.
func (r *reloadState) add(s *supervisor) {
	r.mu.Lock()
	r.sups = append(r.sups, s)
	r.mu.Unlock()
}

func (r *reloadState) remove(s *supervisor) {
	r.mu.Lock()
	r.sups = slices.DeleteFunc(r.sups, func(k *supervisor) bool { return k == s })
	r.mu.Unlock()
}

// Reload replaces every supervised child (Supervise) of this process with
// a new generation, without a moment in which none serves:
//
//  1. It starts a new process for each, from the same command but, for a
//     worker (Command), from the binary that is on disk at the executable's
//     path now (os.Executable), not the running image: that is what a
//     deploy changed; a restart of such a worker (Supervise) runs that
//     path again. An external command runs its Path again. The new
//     processes get the same listeners (Listen), shared hooks, arguments
//     and environment, and Generation one higher; each takes the old
//     one's place in the exit stack only once every new one is ready.
//  2. It waits until every new worker has acknowledged Install (its
//     readiness: a worker that must prepare before it serves does so
//     before Install, or Run); an external command is ready once started.
//     A listener's queue keeps the connections that come meanwhile.
//  3. It puts the new processes in place — the *Child of each supervised
//     child now stands for its new process: PID, Signal, Stop and Wait
//     follow it — reports the event (WithReloadEvents), and stops the old
//     generation in order: the entries newest first, each entry's old
//     processes together, each with its grace period (WithGrace) to
//     finish its work and run its hooks, then SIGKILL; it returns once
//     they are gone.
//
// A reload that fails — a new process that cannot start (the binary was
// deleted), exits before it acknowledged (it crashed, or its Install
// refused the registry), or has not acknowledged within AckTimeout, or ctx
// ends first — stops every new process it started (one that has not
// acknowledged is killed with its group) and leaves the old generation as
// it was, serving. The error names the child and the cause, and is logged.
//
// One reload at a time: a Reload while another runs returns
// ErrReloadInProgress at once; once the shutdown has begun it returns
// ErrStopping, even while an earlier reload is still ending. A shutdown
// that begins during a reload stops both generations, each in its entry's
// turn; Reload then returns ErrStopping.
// Children started (Start) while a reload runs are not part of it, nor
// are children that are not supervised. Restarts (Supervise) go on during
// a reload; the new generation begins with a fresh restart count.
//
// Under systemd (NOTIFY_SOCKET), a reload sends RELOADING=1 with
// MONOTONIC_USEC= and STATUS= in one datagram when it begins, and READY=1
// with STATUS= when it ends, successful or not: what Type=notify-reload
// (systemd 253 and later) needs, and harmless under Type=notify. Refused
// reloads send nothing.
//
// A process with no supervised child starts no generation: Reload returns
// nil and Generation stays as it was (under systemd it still answers
// RELOADING=1 with READY=1).
//
// On Linux, macOS, BSD and Windows alike; the new binary must be at the
// path os.Executable reports.
func Reload(ctx context.Context) error {
	err := reloadOnce(ctx)
	if r, ok := err.(notBegun); ok {
		return r.err
	}
	return err
}

// notBegun is a reload refused before it began: another one runs, or the
// shutdown has begun.
type notBegun struct{ err error }

func (r notBegun) Error() string { return r.err.Error() }

// reloadOnce is Reload; a refusal is a notBegun.
func reloadOnce(ctx context.Context) error {
	reloads.mu.Lock()
	switch {
	case rt.begun(): // first: a reload that the shutdown is ending may still run
		reloads.mu.Unlock()
		return notBegun{ErrStopping}
	case reloads.running:
		reloads.mu.Unlock()
		return notBegun{ErrReloadInProgress}
	}
	reloads.running = true
	sups := slices.Clone(reloads.sups)
	reloads.mu.Unlock()
	over := func() {
		reloads.mu.Lock()
		reloads.running = false
		reloads.mu.Unlock()
	}
	gen := Generation() + 1
	cfg := rt.config()
	begun := time.Now()
	sdnotify.Reloading(fmt.Sprintf("reloading: generation %d", gen))
	cfg.log.Info("multiexit: reload begins", "generation", gen)

	r := &reload{gen: gen, cfg: cfg}
	err := r.start(ctx, sups)
	if err == nil && len(r.news) == 0 {
		// Nothing supervised to replace: no new generation.
		cfg.log.Info("multiexit: reload: no supervised child to replace", "generation", gen-1)
		sdnotify.Reloaded(fmt.Sprintf("nothing to reload: generation %d serving", gen-1))
		over()
		if f := cfg.reload.events; f != nil {
			f(ReloadEvent{Generation: gen - 1, Done: true, Took: time.Since(begun)})
		}
		return nil
	}
	if err == nil {
		err = r.await(ctx)
	}
	if err == nil {
		err = r.place()
	}
	took := time.Since(begun)
	if err != nil {
		if errors.Is(err, ErrStopping) {
			// The entries' turns stop both generations.
			cfg.log.Info("multiexit: reload interrupted: the shutdown began; both generations are stopped in order", "generation", gen)
		} else {
			r.rollback()
			cfg.log.Error("multiexit: reload failed; the old generation serves on", "generation", gen, "err", err)
		}
		sdnotify.Reloaded(fmt.Sprintf("reload to generation %d failed: %v", gen, err))
		over()
		if f := cfg.reload.events; f != nil {
			f(ReloadEvent{Generation: gen, Children: len(r.news), Err: err, Took: took})
		}
		return err
	}
	reloads.mu.Lock()
	reloads.done++
	reloads.mu.Unlock()
	cfg.log.Info("multiexit: reload: the new generation is ready; stopping the old one", "generation", gen, "children", len(r.news), "took", took)
	if f := cfg.reload.events; f != nil {
		f(ReloadEvent{Generation: gen, Children: len(r.news), Took: took})
	}
	r.stopOld()
	sdnotify.Reloaded(fmt.Sprintf("generation %d serving", gen))
	took = time.Since(begun)
	cfg.log.Info("multiexit: reload done", "generation", gen, "took", took)
	over()
	if f := cfg.reload.events; f != nil {
		f(ReloadEvent{Generation: gen, Children: len(r.news), Done: true, Took: took})
	}
	return nil
}

package multiexit

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/multiexit/multiexit/internal/sdnotify"
)

// The finisher's work once the shutdown began: the drain, Run's main, the
// exit stack, the end of the process.

// finish runs the drain, waits for Run's main, runs the exit stack and ends
// the process; the finisher calls it once, after begin.
func (s *shutdown) finish() {
	s.mu.Lock()
	sc, cfg, code, cause, by, ph := s.sc, s.cfg, s.code, s.cause, s.by, s.phase
	s.mu.Unlock()
	clk := s.fx.clock
	start := clk.now()
	if ph == phaseDraining {
		drained, t := clk.after(cfg.drain)
		select {
		case <-drained:
		case <-sc.Done():
		case <-s.drainCut: // Exit, or Run's main returned: nothing serves any more
		}
		t.Stop()
		s.mu.Lock()
		if s.phase == phaseDraining {
			s.phase = phaseStopping
		}
		s.cancelRun()
		s.mu.Unlock()
		if cfg.trace {
			cfg.log.Info("multiexit: drain ended; stopping", "drain", clk.since(start))
		}
	}
	if by == byMainReturned && code == 1 {
		cfg.log.Error("multiexit: main returned an error", "err", cause)
	}
	// A main that has not started by now never starts (see run): the
	// hooks must not run beside it, nor the process end in its middle.
	s.mu.Lock()
	mainDone := s.mainDone
	if by == byMainReturned || by == byExit {
		mainDone, s.mainDone = nil, nil // not waited for
	}
	s.mainShut = true
	s.mu.Unlock()
	if mainDone != nil {
		s.waitMain(sc, mainDone, cfg.log)
	}
	sdnotify.Status("running the exit hooks")
	d := &drainer{s: s.stack, ctx: sc, window: lateWindow, log: cfg.log, trace: cfg.trace,
		exit: func() { s.end(start) }, clock: clk, begun: clk.now(), gone: s.gone}
	s.mu.Lock()
	d.hardEnd = s.hardEnd // with the drainer in place: heardParent moves both
	s.drainer = d
	s.mu.Unlock()
	d.run()
	<-s.gone // the process ends from whoever ran the stack to its end
}

// waitMain waits for Run's main to return, for at most half of what is
// left of the deadline: the hooks need the rest.
func (s *shutdown) waitMain(sc *shutdownCtx, mainDone <-chan struct{}, log *slog.Logger) {
	select {
	case <-mainDone:
		return
	default:
	}
	wait := sc.left() / 2
	waited, t := s.fx.clock.after(wait)
	defer t.Stop()
	select {
	case <-mainDone:
		return
	case <-waited:
		log.Error("multiexit: Run's main has not returned; running the exit hooks anyway", "waited", wait)
	case <-sc.Done():
		// A second signal (or the deadline) cancelled main's context at
		// the same moment: it gets the slack an abandoned hook gets to
		// return before it is said not to have.
		slack, t := s.fx.clock.after(abandonSlack)
		defer t.Stop()
		select {
		case <-mainDone:
			return
		case <-slack:
		}
		log.Error("multiexit: Run's main has not returned; running the exit hooks anyway", "cause", context.Cause(sc))
	}
}

// end ends the process once the stack is empty.
func (s *shutdown) end(start time.Time) {
	s.mu.Lock()
	s.phase = phaseExiting
	code, sig, cfg := s.code, s.sig, s.cfg
	s.mu.Unlock()
	if cfg.trace {
		how := fmt.Sprint("exit code ", code)
		if sig != nil {
			how = "signal " + sig.String()
		}
		cfg.log.Info("multiexit: exiting", "code", code, "by", how, "duration", s.fx.clock.since(start))
	}
	s.fx.exit(code, sig)
	close(s.gone)
}

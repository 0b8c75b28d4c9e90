package multiexit

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"
)

// One reload: a new generation started, awaited, put in place of the old
// one (which is stopped in order), or rolled back.

// reload is one Reload's work.
type reload struct {
	gen  int
	cfg  config
	sups []*supervisor // of the processes in news, one for one
	news []*Child
	exe  string   // the binary a worker of the new generation runs
	olds []*Child // the processes taken out of place (by place)
}

// start starts a process of the new generation for each supervision still
// running; each is among its entry's reloading children until placed.
func (r *reload) start(ctx context.Context, sups []*supervisor) error {
	exe, exeErr := os.Executable()
	for _, s := range sups {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("multiexit: Reload: generation %d: %w", r.gen, context.Cause(ctx))
		}
		cmd := s.command()
		if s.worker {
			if exeErr != nil {
				return fmt.Errorf("multiexit: Reload: generation %d: cannot find this binary for %v: %w", r.gen, s.face, exeErr)
			}
			cmd.Path = exe
			r.exe = exe
		}
		starts.mu.Lock()
		s.g.mu.Lock()
		s.mu.Lock()
		skip := s.cur == nil || s.stopped || s.finished || s.g.stopped
		stopping := rt.begun()
		old := s.cur
		s.mu.Unlock()
		if skip || stopping {
			s.g.mu.Unlock()
			starts.mu.Unlock()
			if stopping {
				return ErrStopping
			}
			starts.workers.take(cmd)
			foregrounds.take(cmd)
			continue
		}
		s.starting, s.startGen = 0, r.gen
		c, err := startChild(cmd, s.hooksJSON, s.cfg, s.g.ec, s.g, s)
		s.startGen = s.gen
		if err == nil {
			s.g.reloading = append(s.g.reloading, c)
		}
		s.g.mu.Unlock()
		starts.mu.Unlock()
		if err != nil {
			return fmt.Errorf("multiexit: Reload: generation %d: replacing %v: %w", r.gen, old, err)
		}
		r.sups = append(r.sups, s)
		r.news = append(r.news, c)
	}
	return nil
}

// await waits until every new process is ready (see Reload).
func (r *reload) await(ctx context.Context) error {
	t := time.NewTimer(starts.ackTimeout)
	defer t.Stop()
	for _, c := range r.news {
		if !c.worker {
			continue
		}
		select {
		case <-c.ready:
			continue
		case <-c.ackRead:
		case <-rt.started:
			return ErrStopping
		case <-ctx.Done():
			return fmt.Errorf("multiexit: Reload: generation %d: waiting for worker %v: %w", r.gen, c, context.Cause(ctx))
		case <-t.C:
			return fmt.Errorf("multiexit: Reload: generation %d: worker %v did not acknowledge Install within %v", r.gen, c, starts.ackTimeout)
		}
		select {
		case <-c.ready:
			continue
		default:
		}
		select {
		case <-c.done:
			return fmt.Errorf("multiexit: Reload: generation %d: worker %v exited before it acknowledged Install: %v", r.gen, c, exitStatus(c.err))
		case <-rt.started:
			return ErrStopping
		case <-ctx.Done():
			return fmt.Errorf("multiexit: Reload: generation %d: waiting for worker %v: %w", r.gen, c, context.Cause(ctx))
		case <-t.C:
			return fmt.Errorf("multiexit: Reload: generation %d: worker %v closed its control channel without acknowledging Install within %v", r.gen, c, starts.ackTimeout)
		}
	}
	return nil
}

// place puts each new process in its supervision's place; the old ones
// stay among their entry's reloading children until stopOld is done.
func (r *reload) place() error {
	for i, s := range r.sups {
		c := r.news[i]
		starts.mu.Lock()
		s.g.mu.Lock()
		s.mu.Lock()
		if rt.begun() {
			s.mu.Unlock()
			s.g.mu.Unlock()
			starts.mu.Unlock()
			return ErrStopping // the entries' turns stop both generations
		}
		gone := s.stopped || s.finished || s.g.stopped
		var old *Child
		if !gone {
			old = s.cur
			s.cur, s.gen, s.startGen = c, r.gen, r.gen
			s.recent, s.next, s.attempts = nil, 0, 0
			if s.worker {
				// Its restarts run the new generation's binary too.
				s.tmpl.Path = r.exe
			}
			for j, k := range s.g.children {
				if k == old {
					s.g.children[j] = c
				}
			}
			s.g.reloading = slices.DeleteFunc(s.g.reloading, func(k *Child) bool { return k == c })
			s.g.reloading = append(s.g.reloading, old)
		}
		s.mu.Unlock()
		s.g.mu.Unlock()
		starts.mu.Unlock()
		r.news[i] = nil // placed, or to be stopped below
		if gone {
			// Stopped (Child.Stop) or ended meanwhile: so is its successor.
			stopChildren(context.Background(), []*Child{c}, r.cfg.grace, nil)
			dropReloading(s.g, c)
			continue
		}
		r.olds = append(r.olds, old)
	}
	r.news = r.news[:0]
	for _, s := range r.sups {
		r.news = append(r.news, s.current())
	}
	return nil
}

// rollback stops the new processes not placed: one that has not
// acknowledged is killed with its group at once (its hooks are not in
// place), the others are stopped in order; the entry forgets them.
func (r *reload) rollback() {
	var kids []*Child
	for _, c := range r.news {
		if c == nil {
			continue
		}
		select {
		case <-c.ready:
		default:
			c.killRunning(0)
		}
		kids = append(kids, c)
	}
	stopChildren(context.Background(), kids, r.cfg.grace, nil)
	for i, c := range r.news {
		if c != nil {
			dropReloading(r.sups[i].g, c)
		}
	}
}

// stopOld stops the old generation: the entries newest first, each
// entry's processes together.
func (r *reload) stopOld() {
	var groups []*childGroup
	for _, s := range r.sups {
		if !slices.Contains(groups, s.g) {
			groups = append(groups, s.g)
		}
	}
	for i := len(groups) - 1; i >= 0; i-- {
		g := groups[i]
		var kids []*Child
		for _, c := range r.olds {
			if c.group == g {
				kids = append(kids, c)
			}
		}
		stopChildren(context.Background(), kids, r.cfg.grace, nil)
		for _, c := range kids {
			dropReloading(g, c)
		}
	}
}

func dropReloading(g *childGroup, c *Child) {
	g.mu.Lock()
	g.reloading = slices.DeleteFunc(g.reloading, func(k *Child) bool { return k == c })
	g.mu.Unlock()
}

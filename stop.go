package multiexit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/multiexit/multiexit/internal/contain"
	"github.com/multiexit/multiexit/internal/osproc"
	"github.com/multiexit/multiexit/internal/sdnotify"
)

// The Start entry on the stack (childGroup) and the stop ladder that stops
// its children: SIGTERM (a worker told its budget first), one shared grace
// period, SIGKILL to what is left, the reaping, then the sweep of what the
// children left behind (internal/contain).

// stopChildren is the stop ladder, for the children of one entry or one
// Child: each gets SIGTERM and SIGCONT at once, they share one grace period
// (bounded by ctx: see share), what is left is SIGKILLed with its process
// group, and every child is reaped before it returns. A worker is told its
// grace period first, so that its own stop fits in it. It returns when the
// grace period ends (or ended), for the sweep of what the children left.
//
// What the children left outside their process groups (escapees, on the
// cgroup and subreaper layers) gets SIGTERM with them, so that everything
// of the entry shares the one grace period; the sweep that follows kills
// what is left at its end. If ctx ends first (a second signal, or the
// deadline), what is still running gets the short late window instead. If
// ctx's deadline is brought forward meanwhile (this process is a worker
// whose parent gave it less time), the grace period shrinks to fit again,
// and each worker being stopped is told its new, shorter budget.
func stopChildren(ctx context.Context, kids []*Child, grace time.Duration, ec *contain.Entry) (end time.Time) {
	// Watched from before the share is taken: a cut that comes while the
	// children are being signalled still shrinks it.
	var shortened <-chan struct{}
	sc, _ := ctx.(*shutdownCtx)
	if sc != nil {
		shortened = sc.whenShortened()
	}
	full := grace
	grace = share(ctx, grace)
	begun := time.Now()
	end = begun.Add(grace)
	// A child that has caught its signals is signalled at once; one still
	// starting (a worker before its Install) is waited for in a goroutine
	// of its own, so that it delays no other child's stop.
	var running []*Child
	var mu sync.Mutex
	stop := func(c *Child) {
		if c.startStop(end) {
			mu.Lock()
			running = append(running, c)
			mu.Unlock()
		}
	}
	var late sync.WaitGroup
	for _, c := range kids {
		c.letReap() // the entry's stop closes the pipes the caller reads
		if c.hasCaught() {
			stop(c)
			continue
		}
		late.Go(func() {
			c.waitCaught(ctx, end)
			stop(c)
		})
	}
	late.Wait()
	var groups, externals, workers []int
	for _, c := range kids {
		if c.leader {
			groups = append(groups, c.PID())
		}
		if c.worker {
			workers = append(workers, c.PID())
		} else {
			externals = append(externals, c.PID())
		}
	}
	if ec != nil {
		ec.TermEscapees(groups, externals, workers, rt.logger().Warn)
	}
	if len(running) > 0 {
		t := time.NewTimer(time.Until(end))
		done := ctx.Done()
		for i := 0; i < len(running); {
			select {
			case <-running[i].exited:
				i++
				continue
			case <-done:
				done = nil
				if time.Until(end) > lateWindow {
					end = time.Now().Add(lateWindow)
					t.Reset(lateWindow)
				}
				continue
			case <-shortened:
				shortened = sc.whenShortened()
				if e := time.Now().Add(share(ctx, full)); e.Before(end) {
					end = e
					t.Reset(time.Until(end))
					for _, c := range running[i:] {
						c.retell(end)
					}
				}
				continue
			case <-t.C:
			}
			given := max(end.Sub(begun), time.Millisecond) // the grace period, shortened since, maybe
			for _, c := range running[i:] {
				c.killRunning(given)
			}
			break
		}
		t.Stop()
	}
	for _, c := range kids {
		<-c.done
	}
	return end
}

// share is the grace period children get when ctx carries a deadline (the
// shutdown's): at most half of what is left of it, so that the hooks below
// the entry, and in a worker its parent's margin, still have time. This is
// how one budget holds for a whole tree: a worker is given its grace period
// as its own deadline, and gives its children at most half of that.
func share(ctx context.Context, grace time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(min(grace, time.Until(dl)/2), 0)
	}
	return grace
}

// waitCaught waits, for a worker still starting, until it caught SIGTERM
// (a signal before that would kill it without its hooks), or exited, or
// ctx ended, at most until end (the grace period's) and AckTimeout after
// its start; one that never got there is killed with its group.
// hasCaught reports whether c can be signalled now: an external command,
// a worker that caught its signals, or a child that has exited.
func (c *Child) hasCaught() bool {
	if !c.worker {
		return true
	}
	select {
	case <-c.caught:
		return true
	case <-c.exited:
		return true
	default:
		return false
	}
}

func (c *Child) waitCaught(ctx context.Context, end time.Time) {
	if c.hasCaught() {
		return
	}
	until := c.started.Add(starts.ackTimeout)
	if end.Before(until) {
		until = end
	}
	t := time.NewTimer(time.Until(until))
	defer t.Stop()
	select {
	case <-c.caught:
		return
	case <-c.exited:
		return
	case <-ctx.Done():
	case <-t.C:
	}
	c.killRunning(0)
}

// startStop sends the child SIGTERM and SIGCONT (see Stop), once, telling a
// worker first until when it has. It reports whether this call began the
// stop of a child still running.
func (c *Child) startStop(end time.Time) bool {
	first := false
	c.stopOnce.Do(func() { first = true })
	if !first {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopping = true
	if c.isExited {
		return false
	}
	c.ch.TellBudget(end) // a worker first
	// Held with mu: the leader is alive or an unreaped zombie, so its
	// group ID cannot have been reused.
	c.terminate()
	return true
}

// retell tells a worker being stopped a shorter budget, until end: its
// parent (this process) was given less time since its stop began.
func (c *Child) retell(end time.Time) {
	if !c.worker {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.isExited {
		c.ch.TellBudget(end)
	}
}

// terminate asks the child to stop (see Stop): SIGTERM and SIGCONT to its
// process group; on Windows, a worker is told through its control channel
// (ctl.Parent.Stop) and CTRL_BREAK_EVENT goes to the child's process group. An
// external child that cannot be sent it is terminated after the grace
// period; that is logged.
func (c *Child) terminate() {
	c.ch.Stop() // Windows: a worker is told through its control channel
	err := osproc.Terminate(c.cmd.Process, c.leader)
	switch {
	case err == nil:
	case c.worker:
		rt.logger().Info("multiexit: cannot send CTRL_BREAK_EVENT to the worker's process group; the worker itself was told through its control channel",
			"pid", c.PID(), "cmd", c.cmd.Path, "err", err)
	default:
		rt.logger().Warn("multiexit: cannot send CTRL_BREAK_EVENT to the child (does this process have a console?); it will be terminated after the grace period",
			"pid", c.PID(), "cmd", c.cmd.Path, "grace", rt.config().grace, "err", err)
	}
}

// kill sends SIGKILL to the child's process group (on Windows: terminates
// the child).
func (c *Child) kill() { osproc.Kill(c.cmd.Process, c.leader) }

// killRunning kills the child's process group if the child has not exited
// (its grace period ran out, or the shutdown deadline passed); once it has,
// reap kills the group. A grace above zero is logged as having run out.
func (c *Child) killRunning(grace time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopping = true
	if c.isExited {
		return
	}
	if grace > 0 {
		rt.logger().Warn("multiexit: child did not stop within its grace period; killing its process group",
			"pid", c.PID(), "cmd", c.cmd.Path, "grace", grace)
	}
	c.kill()
}

// childGroup is the children of one Start call: one entry of the stack.
type childGroup struct {
	ec       *contain.Entry
	entry    *Handle
	mu       sync.Mutex
	children []*Child
	stopped  bool // the entry ran (or Start failed): stopAll sweeps
	sealed   bool // Start added every child
	retired  bool // every child is gone; maybeRetire decided
	gone     int  // children reaped
	stops    int  // of which stopped by Stop

	// reloading are the processes a Reload started and has not put in
	// place yet, and those it took out and is stopping: the entry's stop
	// stops them too.
	reloading []*Child
}

func (g *childGroup) seal() {
	g.mu.Lock()
	g.sealed = true
	g.mu.Unlock()
	g.maybeRetire()
}

// childGone is called as each child is reaped.
func (g *childGroup) childGone(stopped bool) {
	g.mu.Lock()
	g.gone++
	if stopped {
		g.stops++
	}
	g.mu.Unlock()
	g.maybeRetire()
}

// maybeRetire takes the entry off the stack once every child is gone, so
// that starting and stopping children over and over does not grow it. If
// the children were stopped with Stop, what is left of the entry is swept
// now; otherwise the entry is released (its cgroup removed) as soon as
// nothing of it is alive — descendants left by children that exited by
// themselves may live on for a while — and stays on the stack until then.
func (g *childGroup) maybeRetire() {
	g.mu.Lock()
	ready := g.sealed && !g.stopped && !g.retired && len(g.children) > 0 && g.gone == len(g.children)
	explicit := g.stops > 0
	if ready {
		g.retired = true
	}
	g.mu.Unlock()
	if !ready {
		return
	}
	if explicit {
		if g.entry.Unregister() {
			cfg := rt.config()
			g.ec.Sweep(time.Now().Add(cfg.grace), cfg.log.Warn)
			g.ec.Release()
		}
		return
	}
	g.ec.WhenEmpty(func() {
		if g.entry.Unregister() {
			g.ec.Release()
		}
	})
}

func (g *childGroup) add(c *Child) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	g.children = append(g.children, c)
	return true
}

// abort stops what a failed Start started: a worker that has not
// acknowledged Install is killed at once (it has no hooks in place, and
// has had its time), the others are stopped.
func (g *childGroup) abort(grace time.Duration) {
	g.mu.Lock()
	g.stopped = true
	kids := append(g.children[:len(g.children):len(g.children)], g.reloading...)
	g.mu.Unlock()
	for _, c := range kids {
		select {
		case <-c.ready:
		default:
			c.killRunning(0)
		}
	}
	end := stopChildren(context.Background(), kids, grace, g.ec)
	g.ec.Sweep(end, rt.logger().Warn)
	g.ec.Release()
}

// stopAll is the entry's hook: it stops the children and sweeps what is
// left of the entry.
func (g *childGroup) stopAll(ctx context.Context) error {
	g.mu.Lock()
	g.stopped = true
	kids := append(g.children[:len(g.children):len(g.children)], g.reloading...)
	g.mu.Unlock()
	cfg := rt.config()
	if sdnotify.Enabled() {
		sdnotify.Status("stopping " + g.String())
	}
	if rt.begun() {
		// The process exits after the hooks: orphans the reaper would
		// have adopted meanwhile die with the tree or at the sweep.
		defer g.ec.Quiet()()
	}
	end := stopChildren(ctx, kids, cfg.grace, g.ec)
	g.ec.Sweep(end, cfg.log.Warn)
	g.ec.Release()
	return nil
}

func (g *childGroup) String() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "children of Start (%d:", len(g.children))
	for i, c := range g.children {
		if i == 8 {
			b.WriteString(" …")
			break
		}
		b.WriteString(" pid ")
		b.WriteString(strconv.Itoa(c.PID()))
	}
	b.WriteString(")")
	return b.String()
}

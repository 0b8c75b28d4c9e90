package multiexit

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multiexit/multiexit/internal/contain"
	"github.com/multiexit/multiexit/internal/ctl"
	"github.com/multiexit/multiexit/internal/osproc"
)

// A child's life once started: its handle (Child), waiting for it and
// reaping it, signalling it, and the stop ladder that stops the children
// of one entry (SIGTERM, the grace period, SIGKILL).

// Child is a process started by Start: a worker or an external command.
type Child struct {
	cmd     *exec.Cmd // the caller's; its Wait is refused (see Start)
	wait    *exec.Cmd // a copy of cmd made at the start, holding exec's state: the one that waits
	group   *childGroup
	worker  bool
	leader  bool        // leads its own process group: stop signals the group
	started time.Time   // when Start started it
	job     *osproc.Job // its place in the terminal's job control (Foreground), or nil
	// sup: the supervision of a child of Supervise. The *Child that Start
	// returned for it has only cmd and sup, and stands for the current
	// process, a *Child of its own with the same sup.
	sup      *supervisor
	gen      int          // the generation it was started in (a supervised child: see Reload)
	retiring atomic.Bool  // the worker called Retire
	readyAt  atomic.Int64 // when a worker acknowledged Install (UnixNano)

	ch      *ctl.Parent   // a worker's control channel, the parent's end; nil for an external child
	caught  chan struct{} // closed when a worker caught SIGTERM (package initialisation)
	ready   chan struct{} // closed when a worker acknowledged Install
	ackRead chan struct{} // closed when the acknowledgement end reached EOF
	exited  chan struct{} // closed when the process exited (maybe not yet reaped)
	done    chan struct{} // closed when reaped; err and state are then set
	err     error
	state   *os.ProcessState
	// piped: the caller reads the child's output through a pipe of exec's
	// (StdoutPipe, StderrPipe), which exec.Cmd.Wait closes: the child is
	// reaped only once the caller is done (Child.Wait, Stop, the entry's
	// stop: reapable is closed), as os/exec requires of its own Wait.
	piped     bool
	reapable  chan struct{}
	reapOnce  sync.Once
	published sync.Once

	mu       sync.Mutex
	isExited bool // the process exited; held with mu, reaping waits
	stopping bool

	stopOnce sync.Once
	observed atomic.Bool // someone called Wait: an exit is theirs to report
}

// PID is the child's process ID.
func (c *Child) PID() int {
	if c.isFace() {
		return c.sup.current().PID()
	}
	return c.cmd.Process.Pid
}

// isFace reports whether c is the handle of a supervised child, which
// stands for its current process.
func (c *Child) isFace() bool { return c.sup != nil && c.sup.face == c }

// Restarts is how many times a supervised child was restarted (see
// Supervise): 0 for any other.
func (c *Child) Restarts() int {
	if c.sup == nil {
		return 0
	}
	c.sup.mu.Lock()
	defer c.sup.mu.Unlock()
	return c.sup.restarts
}

// Wait waits for the child to exit and returns what exec.Cmd.Wait returned;
// once it has returned, the command's ProcessState is the child's. It
// closes the pipes of the command's StdoutPipe and StderrPipe, as
// exec.Cmd.Wait does: read them to their end first. Any number of
// goroutines may call it.
func (c *Child) Wait() error {
	if c.isFace() {
		return c.sup.wait()
	}
	c.observed.Store(true)
	c.letReap()
	<-c.done
	c.published.Do(func() { c.cmd.ProcessState = c.state })
	return c.err
}

// letReap lets the reaper wait for the child, pipes and all.
func (c *Child) letReap() { c.reapOnce.Do(func() { close(c.reapable) }) }

// Stop stops the child and returns what Wait returns: SIGTERM and SIGCONT
// to its process group (on Windows, CTRL_BREAK_EVENT), up to the grace
// period (WithGrace) for it to exit, then SIGKILL to the whole group, and
// reap. A worker that is still starting is given until its package
// initialisation has caught SIGTERM (it then holds it until Install, and
// runs its hooks), at most until AckTimeout after its start. Stop is
// idempotent.
func (c *Child) Stop() error {
	if c.isFace() {
		return c.sup.stop()
	}
	stopChildren(context.Background(), []*Child{c}, rt.config().grace, nil)
	return c.Wait()
}

// Actor returns an actor for github.com/oklog/run: execute waits for the
// child; interrupt stops it.
func (c *Child) Actor() (execute func() error, interrupt func(error)) {
	// Stop in the background: run.Group calls the interrupts one after
	// another, and the children must stop concurrently.
	return c.Wait, func(error) { go c.Stop() }
}

// jobTarget is c as its terminal job sees it (see Foreground).
func (c *Child) jobTarget() osproc.Target {
	return osproc.Target{PID: c.PID(), Exited: c.exited, Locked: func(f func(exited, stopping bool)) {
		c.mu.Lock()
		defer c.mu.Unlock()
		f(c.isExited, c.stopping)
	}}
}

// reap waits for the process. Where the platform can wait without reaping,
// a child that exits while being stopped has the rest of its process group
// killed while it is still an unreaped zombie: that pins the group ID.
func (c *Child) reap() {
	if osproc.WaitExited(c.cmd.Process.Pid) {
		c.mu.Lock()
		c.isExited = true
		if c.stopping {
			c.kill()
		} else if c.leader && c.group != nil {
			c.group.ec.KeepGroup(c.PID()) // what it left in its group, pinned while it is a zombie
		}
		c.mu.Unlock()
		close(c.exited)
		c.job.End()
		if c.piped {
			<-c.reapable
		}
		c.err = c.wait.Wait()
		contain.Untrack(c.cmd)
	} else {
		if c.piped {
			<-c.reapable
		}
		c.err = c.wait.Wait()
		contain.Untrack(c.cmd)
		c.mu.Lock()
		c.isExited = true
		if c.stopping && !osproc.GroupPinned {
			c.kill() // the group, no longer pinned: see osproc.WaitExited
		}
		c.mu.Unlock()
		close(c.exited)
		c.job.End()
	}
	c.state = c.wait.ProcessState
	c.mu.Lock()
	stopping := c.stopping
	c.mu.Unlock()
	if !stopping && c.group != nil && c.sup == nil {
		// It ended by itself: a crash, a panic, or its work was done.
		level := slog.LevelWarn
		if c.err == nil || c.observed.Load() {
			level = slog.LevelInfo
		}
		rt.logger().Log(context.Background(), level, "multiexit: child exited before it was stopped",
			"pid", c.PID(), "cmd", c.cmd.Path, "args", c.cmd.Args[1:], "status", exitStatus(c.err))
	}
	c.ch.Hangup()
	// Before done: Stop and Wait return once the entry has retired.
	if c.sup != nil {
		c.sup.exited(c, stopping) // it may be followed by a new process
	} else {
		c.group.childGone(stopping)
	}
	close(c.done)
}

// ran is how long the process ran, for a supervisor, once it exited:
// from its acknowledgement of Install (a worker; 0 if it never did) or its
// start (an external command) until now.
func (c *Child) ran() time.Duration {
	from := c.started
	if c.worker {
		at := c.readyAt.Load()
		if at == 0 {
			return 0
		}
		from = time.Unix(0, at)
	}
	return max(time.Since(from), 0)
}

// readAck reads what the worker says on the acknowledgement end until its
// end. It runs apart from reap: a worker that never calls Install may leave
// its end open in a grandchild, and that must not keep it from being
// reaped.
func (c *Child) readAck() {
	defer close(c.ackRead)
	caught := false
	c.ch.ReadAcks(func(a ctl.Ack) {
		if !caught && (a == ctl.AckCaught || a == ctl.AckInstalled) {
			caught = true
			close(c.caught)
		}
		if a == ctl.AckInstalled && !closed(c.ready) {
			c.readyAt.Store(time.Now().UnixNano())
			close(c.ready)
		}
		if a == ctl.AckRetire {
			c.retiring.Store(true)
		}
	})
}

func (c *Child) String() string {
	if c.isFace() {
		return c.sup.current().String()
	}
	return fmt.Sprintf("pid %d (%s)", c.PID(), strings.Join(c.cmd.Args, " "))
}

// Signal sends sig to the child alone, without stopping it: no grace
// period, no SIGKILL, and the child stays in its Start entry, which still
// stops it (and sweeps what it leaves) in its turn. Use it to pass a
// signal on: SIGHUP to reload, SIGUSR1, a terminal's SIGWINCH.
//
// Once the child has exited, Signal returns os.ErrProcessDone and sends
// nothing, so it never reaches a process that reuses the child's PID (on
// Linux the child is signalled only while it runs or is a zombie not yet
// reaped). On Windows only os.Kill can be sent, as with os.Process.Signal.
func (c *Child) Signal(sig os.Signal) error {
	if c.isFace() {
		return c.sup.current().Signal(sig) // a supervised child's current process
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isExited {
		return os.ErrProcessDone
	}
	return c.cmd.Process.Signal(sig)
}

// SignalGroup sends sig to the child's process group, without stopping it:
// the child and every descendant that stayed in its group (Start gives each
// child a group of its own), as a shell's job control or tini -g does.
// Descendants that left the group (setsid) do not get it; the entry's stop
// still catches them. A child that Start put in another group (the caller
// set SysProcAttr.Pgid) is signalled alone, as Stop does.
//
// Once the child has exited, SignalGroup returns os.ErrProcessDone and
// sends nothing (on Linux the group is signalled only while its leader
// runs or is a zombie not yet reaped, which keeps the group's ID from
// being reused). On Windows, os.Interrupt is sent as CTRL_BREAK_EVENT to
// the child's process group and os.Kill terminates the child; other
// signals return an error.
func (c *Child) SignalGroup(sig os.Signal) error {
	if c.isFace() {
		return c.sup.current().SignalGroup(sig)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isExited {
		return os.ErrProcessDone
	}
	return osproc.SignalGroup(c.cmd.Process, c.leader, sig)
}

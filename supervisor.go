package multiexit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// The supervisor: one per supervised child, restarting it in its place.

// supervisor keeps one supervised child running: the *Child Start returned
// (face) stands for its current process (cur).
type supervisor struct {
	policy    Policy
	tmpl      exec.Cmd // the command as given, before its first start
	worker    bool
	fg        bool
	listeners bool // ShareListeners marked it: every process gets them
	hooksJSON string
	cfg       config
	g         *childGroup
	face      *Child

	mu       sync.Mutex
	cur      *Child
	restarts int // processes started after the first
	attempts int // restarts decided (a start that failed, or was cancelled, counts here only)
	starting int // the incarnation being started (see incarnationEnv)
	// gen is the generation of cur (see Reload), startGen the one of the
	// process being started; a process of another generation than gen
	// is Reload's business, not the supervision's.
	gen, startGen int
	// uptime is how long the child's processes have run, summed (see
	// Child.ran); recent holds it at each restart within the last
	// Interval of it.
	uptime   time.Duration
	recent   []time.Duration
	next     time.Duration
	stopped  bool          // Stop was called: no restart
	cancel   chan struct{} // closed by Stop: a backoff wait ends
	final    chan struct{} // closed when no process will follow cur
	finished bool
}

// newSupervisor prepares the supervision of cmd, which has not started.
func newSupervisor(cmd *exec.Cmd, p Policy, hooksJSON string, cfg config, g *childGroup) *supervisor {
	if p.Burst <= 0 {
		p.Burst = 5
	}
	if p.Interval <= 0 {
		p.Interval = 10 * time.Second
	}
	if p.Backoff <= 0 {
		p.Backoff = 100 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 30 * time.Second
	}
	s := &supervisor{policy: p, tmpl: *cmd, hooksJSON: hooksJSON, cfg: cfg, g: g,
		worker: starts.workers.has(cmd), fg: foregrounds.has(cmd), listeners: listeners.shared.has(cmd),
		cancel: make(chan struct{}), final: make(chan struct{})}
	s.tmpl.Args = append([]string(nil), cmd.Args...)
	if cmd.Env != nil {
		s.tmpl.Env = append([]string(nil), cmd.Env...)
	}
	s.tmpl.ExtraFiles = append([]*os.File(nil), cmd.ExtraFiles...)
	if cmd.SysProcAttr != nil {
		a := *cmd.SysProcAttr
		s.tmpl.SysProcAttr = &a
	}
	s.face = &Child{cmd: cmd, sup: s}
	s.gen = Generation()
	s.startGen = s.gen
	reloads.add(s)
	return s
}

// command is a new command for the next restart, made from the template.
func (s *supervisor) command() *exec.Cmd {
	cmd := new(exec.Cmd)
	*cmd = s.tmpl
	cmd.Args = append([]string(nil), s.tmpl.Args...)
	if s.tmpl.Env != nil {
		cmd.Env = append([]string(nil), s.tmpl.Env...)
	}
	cmd.ExtraFiles = append([]*os.File(nil), s.tmpl.ExtraFiles...)
	if s.tmpl.SysProcAttr != nil {
		a := *s.tmpl.SysProcAttr
		cmd.SysProcAttr = &a
	}
	if s.worker {
		starts.workers.add(cmd)
	}
	if s.fg {
		foregrounds.add(cmd)
	}
	if s.listeners {
		listeners.shared.add(cmd)
	}
	return cmd
}

// incarnationEnv is env for the process of a supervisor being started:
// without incarnationVar, which only a restarted worker gets.
func (s *supervisor) incarnationEnv(env []string) []string {
	env = environWithout(environWithout(env, incarnationVar), generationVar)
	if s != nil && s.starting > 0 {
		env = append(env, incarnationVar+"="+strconv.Itoa(s.starting))
	}
	if s != nil {
		env = append(env, generationVar+"="+strconv.Itoa(s.startGen))
	}
	return env
}

// first makes c the current process if it is the supervision's first,
// before c's reaper can see it exit: a restart may then follow before Start
// has returned, and must find c in place (and not be overwritten by it).
// A nil s (c is not supervised) does nothing.
func (s *supervisor) first(c *Child) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		s.cur = c
	}
}

func (s *supervisor) current() *Child {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// exited is called by c's reaper once c, the current process, is reaped:
// it decides whether a new process follows, and starts it in the
// background after the backoff; otherwise the supervision ends.
func (s *supervisor) exited(c *Child, stopping bool) {
	s.mu.Lock()
	other := c.gen != s.gen
	s.mu.Unlock()
	if other {
		return // a Reload's: a new process not in place yet, or an old one
	}
	if s.worker {
		// A Retire's word comes before the end of the channel.
		t := time.NewTimer(2 * time.Second)
		select {
		case <-c.ackRead:
		case <-t.C: // a descendant holds the worker's end
		}
		t.Stop()
	}
	s.after(c, c.err, stopping)
}

// after decides what follows the end of c, the current process, which
// ended with err (or could not be replaced: err is the start's error).
func (s *supervisor) after(c *Child, err error, stopping bool) {
	// The group's lock before, not under, the supervisor's: restart takes
	// them in that order. restart checks the group again under its lock.
	s.g.mu.Lock()
	groupStopped := s.g.stopped
	s.g.mu.Unlock()
	s.mu.Lock()
	why := s.whyNot(c, err, stopping || groupStopped)
	var delay time.Duration
	var limit error
	if why == "" {
		ran := c.ran()
		s.uptime += ran
		kept := s.recent[:0]
		for _, t := range s.recent {
			if s.uptime-t < s.policy.Interval {
				kept = append(kept, t)
			}
		}
		s.recent = kept
		if len(s.recent) >= s.policy.Burst {
			why = "restart limit"
			limit = fmt.Errorf("multiexit: supervised child %v exited (%s) after %d restarts within %v: %w (Burst %d in %v); stopping",
				c, exitStatus(err), len(s.recent), s.policy.Interval, ErrRestartLimit, s.policy.Burst, s.policy.Interval)
		} else {
			if ran >= s.policy.Interval {
				s.next = 0 // it ran long enough: the sequence begins again
			}
			delay = jitter(s.next)
			s.next = min(max(2*s.next, s.policy.Backoff), s.policy.MaxBackoff)
			s.recent = append(s.recent, s.uptime)
			s.attempts++
		}
	}
	attempt, gen := s.attempts, s.gen
	s.mu.Unlock()
	if why != "" {
		if limit != nil {
			s.cfg.log.Error(limit.Error(), "pid", c.PID(), "status", exitStatus(err), "burst", s.policy.Burst, "interval", s.policy.Interval)
			s.finish(stopping)
			// As a signal does, not as Exit: Run's main is cancelled
			// and waited for before the hooks run.
			rt.begin(1, nil, limit, byRestartLimit)
			return
		}
		s.finish(stopping)
		return
	}
	level := s.cfg.log.Warn
	if err == nil {
		level = s.cfg.log.Info
	}
	level("multiexit: supervised child exited; restarting it", "pid", c.PID(), "cmd", s.tmpl.Path,
		"status", exitStatus(err), "attempt", attempt, "backoff", delay)
	go s.restart(c, gen, attempt, delay)
}

// whyNot says why the exit of c, the current process, is not followed by a
// new one ("" if it is).
func (s *supervisor) whyNot(c *Child, err error, stopping bool) string {
	switch {
	case stopping || s.stopped:
		return "stopped"
	case rt.begun():
		return "shutdown"
	case s.worker && s.restarts == 0 && !closed(c.ready):
		return "did not acknowledge Install" // Start reports it
	case c.retiring.Load():
		return "retired"
	case !s.policy.Always && err == nil:
		return "exited 0"
	}
	return ""
}

// restart waits delay, then starts the next process in old's place,
// unless the supervision was stopped or the shutdown began meanwhile, or
// a Reload replaced old (of generation gen) meanwhile. A start that fails
// counts as an exit.
func (s *supervisor) restart(old *Child, gen, attempt int, delay time.Duration) {
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.cancel:
			t.Stop()
			s.cfg.log.Info("multiexit: supervised child's restart cancelled: stopped", "old_pid", old.PID(), "attempt", attempt)
			s.finish(true)
			return
		case <-rt.started:
			t.Stop()
			s.cfg.log.Info("multiexit: supervised child's restart cancelled: the shutdown began", "old_pid", old.PID(), "attempt", attempt)
			s.finish(false)
			return
		}
	}
	starts.mu.Lock()
	s.g.mu.Lock()
	s.mu.Lock()
	stop := rt.begun() || s.g.stopped || s.stopped
	reloaded := s.gen != gen
	s.mu.Unlock()
	if reloaded && !stop {
		s.g.mu.Unlock()
		starts.mu.Unlock()
		return // the new generation's process took old's place
	}
	if stop {
		s.g.mu.Unlock()
		starts.mu.Unlock()
		s.finish(true)
		return
	}
	// Under the group's lock: the entry's stop takes the children after
	// this one is in place, or finds the group stopped before.
	s.starting = attempt
	c, err := startChild(s.command(), s.hooksJSON, s.cfg, s.g.ec, s.g, s)
	if err == nil {
		replaced := false
		for i, k := range s.g.children {
			if k == old {
				s.g.children[i], replaced = c, true
			}
		}
		if !replaced {
			// old exited and was restarted before its Start added it
			// to the group (Start adds it after this): the new one is
			// the group's as well, so that the entry's stop takes it.
			s.g.children = append(s.g.children, c)
		}
		s.mu.Lock()
		s.cur = c
		s.restarts++
		stopped := s.stopped // Stop came while it started, and stopped the old one
		s.mu.Unlock()
		if stopped {
			go stopChildren(context.Background(), []*Child{c}, s.cfg.grace, nil)
		}
	}
	s.g.mu.Unlock()
	starts.mu.Unlock()
	if err != nil {
		s.cfg.log.Error("multiexit: supervised child could not be restarted", "cmd", s.tmpl.Path, "attempt", attempt, "err", err)
		s.mu.Lock()
		current := s.gen == gen
		s.mu.Unlock()
		if current {
			s.after(old, err, false) // as an exit: the limit and the backoff apply
		}
		return
	}
	if c.worker {
		// Restarted means serving again: a worker once it acknowledged
		// Install (its exit before that is a failure like any other).
		select {
		case <-c.ready:
		case <-c.done:
			return
		}
	}
	s.cfg.log.Info("multiexit: supervised child restarted", "pid", c.PID(), "old_pid", old.PID(), "attempt", attempt)
	if f := s.policy.OnRestart; f != nil {
		go f(RestartEvent{Child: s.face, OldPID: old.PID(), Status: old.state, Attempt: attempt, Delay: delay})
	}
}

// finish ends the supervision: the group counts the child gone.
func (s *supervisor) finish(stopped bool) {
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return
	}
	s.finished = true
	s.mu.Unlock()
	reloads.remove(s)
	s.g.childGone(stopped)
	close(s.final)
}

// stop is Child.Stop of the supervised child.
func (s *supervisor) stop() error {
	s.mu.Lock()
	if !s.stopped {
		s.stopped = true
		close(s.cancel)
	}
	cur := s.cur
	s.mu.Unlock()
	stopChildren(context.Background(), []*Child{cur}, rt.config().grace, nil)
	return s.wait()
}

// wait is Child.Wait of the supervised child.
func (s *supervisor) wait() error {
	<-s.final
	cur := s.current()
	err := cur.Wait()
	s.face.published.Do(func() { s.face.cmd.ProcessState = cur.state })
	return err
}

// jitter is d give or take a tenth.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d - d/10 + rand.N(d/5+1)
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

package multiexit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multiexit/multiexit/internal/contain"
	"github.com/multiexit/multiexit/internal/sdnotify"
)

// AckTimeout bounds how long Start waits for a worker to call Install.
const AckTimeout = 30 * time.Second

// starts is what Command and Start keep between calls.
var starts = struct {
	mu sync.Mutex // serialises Start's check of the shutdown with its push
	// workers are the commands Command made and Start has not started
	// yet, known by identity. Weak pointers: a command dropped unstarted
	// is forgotten.
	workers    cmdSet
	ackTimeout time.Duration // AckTimeout; tests shorten it
}{ackTimeout: AckTimeout}

// Command returns a command that re-executes this binary as a worker, with
// args as its arguments (os.Args[1:] in the worker). On Linux it runs the
// file this process runs (/proc/self/exe), so a deploy that replaces or
// deletes the binary does not break it, and the worker is the same program
// as its parent; elsewhere it runs os.Executable. Start it with Start: that
// encodes the registry into the worker's environment and opens the control
// channel.
//
// The worker inherits this process's environment, standard output and
// standard error; change Env, Stdout or Stderr before Start if needed
// (Stdout is set, so exec.Cmd's Output and CombinedOutput refuse it). The
// command stays a worker whatever is done to its Env: Start knows it by
// identity. Its Env holds MULTIEXIT=pending, so that a worker started with
// exec.Cmd.Start instead of Start fails its Install with an error saying so.
func Command(args ...string) *exec.Cmd {
	exe, err := selfExecutable()
	cmd := exec.Command(exe, args...)
	if err != nil {
		cmd.Err = fmt.Errorf("multiexit: Command: cannot find this binary: %w", err)
	}
	if len(os.Args) > 0 {
		cmd.Args[0] = os.Args[0]
	}
	cmd.Env = append(environWithout(os.Environ(), EnvVar), EnvVar+"="+pending)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	starts.workers.add(cmd)
	return cmd
}

// Child is a process started by Start: a worker or an external command.
type Child struct {
	cmd     *exec.Cmd // the caller's; its Wait is refused (see Start)
	wait    *exec.Cmd // a copy of cmd made at the start, holding exec's state: the one that waits
	group   *childGroup
	worker  bool
	leader  bool      // leads its own process group: stop signals the group
	started time.Time // when Start started it
	job     *ttyJob   // its place in the terminal's job control (Foreground), or nil
	// sup: the supervision of a child of Supervise. The *Child that Start
	// returned for it has only cmd and sup, and stands for the current
	// process, a *Child of its own with the same sup.
	sup      *supervisor
	gen      int          // the generation it was started in (a supervised child: see Reload)
	retiring atomic.Bool  // the worker called Retire
	readyAt  atomic.Int64 // when a worker acknowledged Install (UnixNano)

	ackR, deathW *os.File      // the parent's ends of a worker's control channel
	caught       chan struct{} // closed when a worker caught SIGTERM (package initialisation)
	ready        chan struct{} // closed when a worker acknowledged Install
	ackRead      chan struct{} // closed when the acknowledgement end reached EOF
	exited       chan struct{} // closed when the process exited (maybe not yet reaped)
	done         chan struct{} // closed when reaped; err and state are then set
	err          error
	state        *os.ProcessState
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
	for _, c := range kids {
		c.letReap() // the entry's stop closes the pipes the caller reads
		c.waitCaught(ctx, end)
	}
	var running []*Child
	var groups, externals, workers []int
	for _, c := range kids {
		if c.startStop(end) {
			running = append(running, c)
		}
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
func (c *Child) waitCaught(ctx context.Context, end time.Time) {
	if !c.worker {
		return
	}
	select {
	case <-c.caught:
		return
	case <-c.exited:
		return
	default:
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
	if c.worker {
		c.tell(msgBudget, int64(monotonicAt(end)))
	}
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
		c.tell(msgBudget, int64(monotonicAt(end)))
	}
}

// tell writes one line of the control channel to a worker.
func (c *Child) tell(kind byte, n int64) {
	if c.deathW == nil || n <= 0 {
		return
	}
	var b [24]byte
	line := strconv.AppendInt(append(b[:0], kind), n, 10)
	c.deathW.Write(append(line, '\n'))
}

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

// reap waits for the process. Where the platform can wait without reaping,
// a child that exits while being stopped has the rest of its process group
// killed while it is still an unreaped zombie: that pins the group ID.
func (c *Child) reap() {
	if waitExited(c.cmd.Process.Pid) {
		c.mu.Lock()
		c.isExited = true
		if c.stopping {
			c.kill()
		} else if c.leader && c.group != nil {
			c.group.ec.KeepGroup(c.PID()) // what it left in its group, pinned while it is a zombie
		}
		c.mu.Unlock()
		close(c.exited)
		c.job.end()
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
		if c.stopping && !groupPinned {
			c.kill() // the group, no longer pinned: see waitExited
		}
		c.mu.Unlock()
		close(c.exited)
		c.job.end()
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
	if c.deathW != nil {
		c.deathW.Close()
	}
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
	var b [1]byte
	for {
		n, err := c.ackR.Read(b[:])
		if n == 1 && !caught && (b[0] == ackCaught || b[0] == ackInstalled) {
			caught = true
			close(c.caught)
		}
		if n == 1 && b[0] == ackInstalled && !closed(c.ready) {
			c.readyAt.Store(time.Now().UnixNano())
			close(c.ready)
		}
		if n == 1 && b[0] == ackRetire {
			c.retiring.Store(true)
		}
		if err != nil {
			break
		}
	}
	c.ackR.Close()
}

func (c *Child) String() string {
	if c.isFace() {
		return c.sup.current().String()
	}
	return fmt.Sprintf("pid %d (%s)", c.PID(), strings.Join(c.cmd.Args, " "))
}

var errShuttingDown = errors.New("multiexit: Start: the shutdown has begun")

// errNotStarted ends a listeners' hand-off whose command was not started.
var errNotStarted = errors.New("multiexit: Start: the command was not started")

// Start starts cmds as children of this process and pushes one entry onto
// the exit stack: when it runs, it stops them all concurrently (see Stop).
// Commands from Command are workers: Start encodes the registry (the active
// shared hooks) into their environment, and returns only once every worker
// has acknowledged Install. A worker that has not done so within AckTimeout
// is killed, with whatever it started, the others are stopped, and Start
// returns an error naming it. Every child gets its own process group; on
// Linux it also gets SIGTERM when this process dies (Pdeathsig), unless the
// caller set SysProcAttr.Pdeathsig. Other SysProcAttr settings of the
// caller are kept. Children do not inherit the systemd variables meant for
// this process (NOTIFY_SOCKET, LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES,
// WATCHDOG_PID, WATCHDOG_USEC), nor does the guardian (see the package
// documentation), whose environment has no multiexit variable either.
//
// Start owns each command's Wait: wait with Child.Wait (or Stop), which
// returns what exec.Cmd.Wait returns and then sets the command's
// ProcessState. From Start on, ProcessState is not nil (a placeholder until
// then), so that a call of the command's own Wait returns at once with
// exec's error "Wait was already called" instead of racing Start's reaper
// for the child's status. A command whose output the caller reads through
// StdoutPipe or StderrPipe keeps os/exec's contract: every byte reaches the
// reader, which reads to the end; the pipes are closed, and the child (a
// zombie meanwhile, as under os/exec) reaped, when the caller calls
// Child.Wait or Stop, or when the entry is stopped. Until then its entry
// stays on the stack.
//
// If anything fails, Start stops what it started and returns an error that
// names the command. Once the shutdown has begun Start starts nothing, and
// a Start still waiting for its workers when it begins returns at once with
// an error; the entry's turn in the shutdown stops what it had started. A
// program that ends on Start's error should return it from Run's main, or,
// without Run, call Exit, which during the shutdown only ends the calling
// goroutine and lets the hooks run (a panic or log.Fatal would end the
// process without them).
func Start(cmds ...*exec.Cmd) ([]*Child, error) {
	if err := checkDefines(); err != nil {
		return nil, err
	}
	if IsChild() && !rt.isInstalled() {
		return nil, errors.New("multiexit: Start: a worker must call Install (or Run) first: its inherited shared hooks are not on its stack yet")
	}
	cfg := rt.config()
	hooksJSON, err := encodeHooks(exitStack.snapshot())
	if err != nil {
		return nil, err // it names multiexit and the shared hook
	}
	ec, err := contain.NewEntry(cfg.log)
	if err != nil {
		return nil, err
	}
	g := &childGroup{ec: ec}
	entry := &Handle{hook: g.stopAll, namer: g, stopsChildren: true}
	g.entry = entry
	starts.mu.Lock()
	if rt.begun() {
		starts.mu.Unlock()
		ec.Release()
		return nil, errShuttingDown
	}
	exitStack.push(entry)
	starts.mu.Unlock()

	fail := func(err error) ([]*Child, error) {
		if entry.Unregister() {
			g.abort(cfg.grace)
		}
		return nil, err
	}
	defer g.seal()
	// started are the first processes; out what Start returns: for a
	// supervised child, the handle that stands for its current process.
	var started, out []*Child
	for _, cmd := range cmds {
		var sup *supervisor
		if p, ok := supervised.take(cmd); ok {
			sup = newSupervisor(cmd, p, hooksJSON, cfg, g)
		}
		c, err := startChild(cmd, hooksJSON, cfg, ec, g, sup)
		if err != nil {
			return fail(err)
		}
		if !g.add(c) {
			end := stopChildren(context.Background(), []*Child{c}, cfg.grace, ec)
			ec.Sweep(end, cfg.log.Warn)
			return nil, errShuttingDown
		}
		started = append(started, c)
		if sup != nil {
			sup.cur = c
			if c.piped {
				return fail(fmt.Errorf("multiexit: Start %s: a supervised command's output cannot be read through StdoutPipe or StderrPipe (a restart could not open them again); set Stdout and Stderr instead", cmd.Path))
			}
			c = sup.face
		}
		out = append(out, c)
	}
	t := time.NewTimer(starts.ackTimeout)
	defer t.Stop()
	for _, c := range started {
		if !c.worker {
			continue
		}
		select {
		case <-c.ready:
			continue
		case <-c.ackRead: // EOF, or the acknowledgement just being read
		case <-rt.started:
			return nil, errShuttingDown // the entry's turn stops them
		case <-t.C:
			return fail(fmt.Errorf("multiexit: Start: worker %v did not acknowledge Install within %v (does it call multiexit.Install or Run?); it was killed, with what it started", c, starts.ackTimeout))
		}
		select {
		case <-c.ready: // it acknowledged, then exited: that is its business
			continue
		default:
		}
		// Its acknowledgement end closed without a word: it exited, or
		// closed it. Its exit decides.
		select {
		case <-c.done:
			return fail(fmt.Errorf("multiexit: Start: worker %v exited before it acknowledged Install: %v", c, exitStatus(c.err)))
		case <-rt.started:
			return nil, errShuttingDown
		case <-t.C:
			return fail(fmt.Errorf("multiexit: Start: worker %v closed its control channel without acknowledging Install within %v; it was killed, with what it started", c, starts.ackTimeout))
		}
	}
	return out, nil
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func startChild(cmd *exec.Cmd, hooksJSON string, cfg config, ec *contain.Entry, g *childGroup, sup *supervisor) (*Child, error) {
	if cmd.Process != nil {
		return nil, fmt.Errorf("multiexit: Start %s: already started", cmd.Path)
	}
	c := &Child{cmd: cmd, group: g, sup: sup, caught: make(chan struct{}), ready: make(chan struct{}), ackRead: make(chan struct{}), exited: make(chan struct{}), done: make(chan struct{}), reapable: make(chan struct{})}
	if sup != nil {
		c.gen = sup.startGen
	}
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	env = sup.incarnationEnv(sdnotify.ScrubEnv(env))
	sealListenFDs() // and the descriptors the LISTEN_ variables named
	worker := starts.workers.take(cmd)
	// The listeners come first: descriptors from 3 (see Listen).
	cmd.Env = env
	handoff, err := passListeners(cmd, worker)
	if err != nil {
		return nil, fmt.Errorf("multiexit: Start %s: listeners: %w", cmd.Path, err)
	}
	env = cmd.Env
	handed := false
	defer func() {
		if !handed {
			handoff.Started(errNotStarted)
		}
	}()
	var childEnds [2]*os.File
	if worker {
		c.worker = true
		deathR, deathW, err := deathPipe()
		if err != nil {
			return nil, fmt.Errorf("multiexit: Start %s: control channel: %w", cmd.Path, err)
		}
		ackR, ackW, err := os.Pipe()
		if err != nil {
			closeAll(deathR, deathW)
			return nil, fmt.Errorf("multiexit: Start %s: control channel: %w", cmd.Path, err)
		}
		c.ackR, c.deathW = ackR, deathW
		childEnds = [2]*os.File{deathR, ackW}
		c.tell(msgDeadline, int64(cfg.timeout)) // read if this process dies
		ids := passControl(cmd, childEnds)
		enc, err := encodeRegistry(os.Getpid(), ids, hooksJSON)
		if err != nil {
			closeAll(deathR, deathW, ackR, ackW)
			return nil, fmt.Errorf("multiexit: Start %s: %w", cmd.Path, err)
		}
		env = append(environWithout(env, EnvVar), EnvVar+"="+enc)
	} else {
		close(c.caught)
		close(c.ready)
		close(c.ackRead)
	}
	cmd.Env = env
	c.leader = prepareChild(cmd)
	if foregrounds.take(cmd) {
		c.job = toForeground(cmd)
	}
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = max(cfg.grace, 100*time.Millisecond)
	}
	release, err := ec.Prepare(cmd)
	if err == nil {
		c.started = time.Now()
		err = ec.ForkTracked(cmd, c.worker, startCmd)
		release()
		handed = true
		if herr := handoff.Started(err); err == nil && herr != nil {
			// The exec shim could not execute the command: it exits 127.
			cmd.Wait()
			contain.Untrack(cmd)
			err = herr
		}
	}
	if c.worker {
		closeAll(childEnds[0], childEnds[1])
	}
	if err != nil {
		closeAll(c.ackR, c.deathW)
		c.job.drop()
		return nil, fmt.Errorf("multiexit: Start %s: %w", cmd.Path, err)
	}
	// The reaper waits on a copy that holds exec's state (the process,
	// the pipes to close, the copying goroutines); the caller's command
	// looks waited for, so that its own Wait is refused (see Start).
	c.wait = new(exec.Cmd)
	*c.wait = *cmd
	cmd.ProcessState = waitRefused
	c.piped = readsPipe(cmd.Stdout) || readsPipe(cmd.Stderr)
	if c.ackR != nil {
		go c.readAck()
	}
	c.job.watch(c)
	go c.reap()
	return c, nil
}

// waitRefused is a started command's ProcessState until Child.Wait returns:
// not nil, so that exec.Cmd.Wait refuses to run.
var waitRefused = new(os.ProcessState)

// readsPipe reports whether w is the child's end of a pipe that exec made
// for StdoutPipe or StderrPipe: exec.Cmd.Start closed it, and exec.Cmd.Wait
// will close the caller's end.
func readsPipe(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	_, err := f.Stat()
	return errors.Is(err, os.ErrClosed)
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
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

package multiexit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// AckTimeout bounds how long Start waits for a worker to call Install.
const AckTimeout = 30 * time.Second

// Command returns a command that re-executes this binary (os.Executable,
// so it works under `go run`) as a worker, with args as its arguments
// (os.Args[1:] in the worker). Start it with Start: that encodes the
// registry into the worker's environment and opens the control channel.
// The worker inherits this process's environment, standard output and
// standard error; change Env, Stdout or Stderr before Start if needed, but
// keep the MULTIEXIT entry that Command puts last in Env.
func Command(args ...string) *exec.Cmd {
	exe, err := os.Executable()
	cmd := exec.Command(exe, args...)
	if err != nil {
		cmd.Err = fmt.Errorf("multiexit: Command: cannot find this binary: %w", err)
	}
	if len(os.Args) > 0 {
		cmd.Args[0] = os.Args[0]
	}
	cmd.Env = append(environWithout(os.Environ(), EnvVar), EnvVar+"="+pending)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd
}

func environWithout(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// isWorker reports whether cmd came from Command (its last MULTIEXIT entry
// is the pending mark) and returns that entry's index.
func isWorker(cmd *exec.Cmd) (int, bool) {
	for i := len(cmd.Env) - 1; i >= 0; i-- {
		if strings.HasPrefix(cmd.Env[i], EnvVar+"=") {
			return i, cmd.Env[i] == EnvVar+"="+pending
		}
	}
	return -1, false
}

// Child is a process started by Start: a worker or an external command.
type Child struct {
	cmd    *exec.Cmd
	group  *childGroup
	worker bool
	leader bool // leads its own process group: stop signals the group

	ackR, deathW *os.File      // the parent's ends of a worker's control channel
	ready        chan struct{} // closed when a worker acknowledged Install
	ackRead      chan struct{} // closed when the acknowledgement (or EOF) was read
	exited       chan struct{} // closed when the process exited (maybe not yet reaped)
	done         chan struct{} // closed when reaped; err is then set
	err          error

	mu       sync.Mutex
	isExited bool // the process exited; held with mu, reaping waits
	stopping bool

	stopOnce sync.Once
	observed atomic.Bool // someone called Wait: an exit is theirs to report
}

// PID is the child's process ID.
func (c *Child) PID() int { return c.cmd.Process.Pid }

// Wait waits for the child to exit and returns what exec.Cmd.Wait returned.
// Any number of goroutines may call it.
func (c *Child) Wait() error {
	c.observed.Store(true)
	<-c.done
	return c.err
}

// Stop stops the child and returns what Wait returns: SIGTERM and SIGCONT
// to its process group (on Windows, CTRL_BREAK_EVENT), up to the grace
// period (WithGrace) for it to exit, then SIGKILL to the whole group, and
// reap. A worker that has not yet acknowledged Install is given until then
// first, so that it runs its hooks. Stop is idempotent.
func (c *Child) Stop() error {
	c.stop(context.Background(), rt.config().grace)
	return c.Wait()
}

// Actor returns an actor for github.com/oklog/run: execute waits for the
// child; interrupt stops it.
func (c *Child) Actor() (execute func() error, interrupt func(error)) {
	// Stop in the background: run.Group calls the interrupts one after
	// another, and the children must stop concurrently.
	return c.Wait, func(error) { go c.Stop() }
}

func (c *Child) stop(ctx context.Context, grace time.Duration) {
	if c.startStop(ctx) {
		grace = boundGrace(ctx, grace)
		t := time.NewTimer(grace)
		select {
		case <-c.exited:
		case <-t.C:
			c.killRunning(grace)
		case <-ctx.Done():
			c.killRunning(0)
		}
		t.Stop()
	}
	<-c.done
}

// boundGrace bounds grace by ctx's deadline.
func boundGrace(ctx context.Context, grace time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < grace {
		return time.Until(dl)
	}
	return grace
}

// startStop sends the child SIGTERM and SIGCONT (see Stop), once; a worker
// that has not acknowledged Install yet first gets until then. It reports
// whether this call began the stop of a child still running.
func (c *Child) startStop(ctx context.Context) bool {
	first := false
	c.stopOnce.Do(func() { first = true })
	if !first {
		return false
	}
	if c.worker {
		select {
		case <-c.ready:
		case <-c.exited:
		case <-ctx.Done():
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopping = true
	if c.isExited {
		return false
	}
	// Held with mu: the leader is alive or an unreaped zombie, so its
	// group ID cannot have been reused.
	c.terminate()
	return true
}

// killRunning kills the child's process group if the child has not exited
// (its grace period ran out, or the shutdown deadline passed); once it has,
// reap kills the group. A grace above zero is logged as having run out.
func (c *Child) killRunning(grace time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
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
		}
		c.mu.Unlock()
		close(c.exited)
		c.err = c.cmd.Wait()
		untrack(c.cmd.Process.Pid)
	} else {
		c.err = c.cmd.Wait()
		untrack(c.cmd.Process.Pid)
		c.mu.Lock()
		c.isExited = true
		if c.stopping && !groupPinned {
			c.kill() // the group, no longer pinned: see waitExited
		}
		c.mu.Unlock()
		close(c.exited)
	}
	c.mu.Lock()
	stopping := c.stopping
	c.mu.Unlock()
	if !stopping && c.group != nil {
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
	c.group.childGone(stopping)
	close(c.done)
}

// readAck waits for the worker's acknowledgement. It runs apart from reap:
// a worker that never calls Install may leave its end open in a
// grandchild, and that must not keep it from being reaped.
func (c *Child) readAck() {
	defer close(c.ackRead)
	var b [1]byte
	if n, _ := c.ackR.Read(b[:]); n == 1 {
		close(c.ready)
	}
	c.ackR.Close()
}

var startMu sync.Mutex // serialises Start's check of the shutdown with its push

// Start starts cmds as children of this process and pushes one entry onto
// the exit stack: when it runs, it stops them all concurrently (see Stop).
// Commands from Command are workers: Start encodes the registry (the active
// shared hooks) into their environment, and returns only once every worker
// has acknowledged Install, or with an error after AckTimeout. Every child
// gets its own process group; on Linux it also gets SIGTERM when this
// process dies (Pdeathsig), unless the caller set SysProcAttr.Pdeathsig.
// Other SysProcAttr settings of the caller are kept.
//
// If anything fails, Start stops what it started and returns an error that
// names the command; it also fails once the shutdown has begun.
func Start(cmds ...*exec.Cmd) ([]*Child, error) {
	if err := checkDefines(); err != nil {
		return nil, err
	}
	if IsChild() && !installed() {
		return nil, errors.New("multiexit: Start: a worker must call Install (or Run) first: its inherited shared hooks are not on its stack yet")
	}
	cfg := rt.config()
	hooksJSON, err := encodeHooks(exitStack.snapshot())
	if err != nil {
		return nil, fmt.Errorf("multiexit: Start: %w", err)
	}
	ec, err := newEntryContainment()
	if err != nil {
		return nil, err
	}
	g := &childGroup{ec: ec}
	entry := &Handle{hook: g.stopAll, group: g}
	g.entry = entry
	startMu.Lock()
	if shuttingDown() {
		startMu.Unlock()
		return nil, errors.New("multiexit: Start: the shutdown has begun")
	}
	exitStack.push(entry)
	startMu.Unlock()

	fail := func(err error) ([]*Child, error) {
		if entry.Unregister() {
			g.stopAll(context.Background())
		}
		return nil, err
	}
	defer g.seal()
	for _, cmd := range cmds {
		c, err := startChild(cmd, hooksJSON, cfg, ec, g)
		if err != nil {
			return fail(err)
		}
		if !g.add(c) {
			c.stop(context.Background(), cfg.grace)
			return fail(errors.New("multiexit: Start: the shutdown has begun"))
		}
	}
	t := time.NewTimer(AckTimeout)
	defer t.Stop()
	for _, c := range g.children {
		if !c.worker {
			continue
		}
		select {
		case <-c.ready:
			continue
		case <-c.ackRead: // EOF, or the acknowledgement just being read
		case <-t.C:
			return fail(fmt.Errorf("multiexit: Start: worker pid %d did not acknowledge Install within %v (does it call multiexit.Install or Run?)", c.PID(), AckTimeout))
		}
		select {
		case <-c.ready: // it acknowledged, then exited: that is its business
		default:
			<-c.done
			return fail(fmt.Errorf("multiexit: Start: worker pid %d exited before it acknowledged Install: %v", c.PID(), exitStatus(c.err)))
		}
	}
	return append([]*Child(nil), g.children...), nil
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func installed() bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.installed
}

func shuttingDown() bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.begun
}

func startChild(cmd *exec.Cmd, hooksJSON string, cfg config, ec *entryContainment, g *childGroup) (*Child, error) {
	if cmd.Process != nil {
		return nil, fmt.Errorf("multiexit: Start %s: already started", cmd.Path)
	}
	c := &Child{cmd: cmd, group: g, ready: make(chan struct{}), ackRead: make(chan struct{}), exited: make(chan struct{}), done: make(chan struct{})}
	envIdx, worker := isWorker(cmd)
	var childEnds [2]*os.File
	if worker {
		c.worker = true
		deathR, deathW, err := deathPipe()
		if err != nil {
			return nil, fmt.Errorf("multiexit: Start %s: control channel: %w", cmd.Path, err)
		}
		ackR, ackW, err := os.Pipe()
		if err != nil {
			deathR.Close()
			deathW.Close()
			return nil, fmt.Errorf("multiexit: Start %s: control channel: %w", cmd.Path, err)
		}
		c.ackR, c.deathW = ackR, deathW
		childEnds = [2]*os.File{deathR, ackW}
		ids := passControl(cmd, childEnds)
		enc, err := encodeRegistry(os.Getpid(), ids, hooksJSON)
		if err == nil {
			cmd.Env = append([]string(nil), cmd.Env...)
			cmd.Env[envIdx] = EnvVar + "=" + enc
		}
		if err != nil {
			closeAll(deathR, deathW, ackR, ackW)
			return nil, fmt.Errorf("multiexit: Start %s: %w", cmd.Path, err)
		}
	} else {
		close(c.ready)
		close(c.ackRead)
	}
	c.leader = prepareChild(cmd)
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = cfg.grace
	}
	release, err := ec.prepare(cmd)
	if err == nil {
		err = forkTracked(cmd)
		release()
	}
	if worker {
		closeAll(childEnds[0], childEnds[1])
	}
	if err != nil {
		closeAll(c.ackR, c.deathW)
		return nil, fmt.Errorf("multiexit: Start %s: %w", cmd.Path, err)
	}
	if c.ackR != nil {
		go c.readAck()
	}
	go c.reap()
	return c, nil
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
	ec       *entryContainment
	entry    *Handle
	mu       sync.Mutex
	children []*Child
	stopped  bool // the entry ran (or Start failed): stopAll sweeps
	sealed   bool // Start added every child
	retired  bool // every child is gone; maybeRetire decided
	gone     int  // children reaped
	stops    int  // of which stopped by Stop
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
// the children were stopped with Stop, or nothing of the entry is left, the
// entry is swept (its cgroup removed) now; otherwise — descendants live on,
// left by children that exited by themselves — it stays for the shutdown.
func (g *childGroup) maybeRetire() {
	g.mu.Lock()
	ready := g.sealed && !g.stopped && !g.retired && len(g.children) > 0 && g.gone == len(g.children)
	explicit := g.stops > 0
	if ready {
		g.retired = true
	}
	g.mu.Unlock()
	if !ready || (!explicit && !g.ec.empty()) {
		return
	}
	if g.entry.Unregister() {
		g.ec.sweep(rt.config().grace, rt.logger().Warn)
	}
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

func (g *childGroup) stopAll(ctx context.Context) error {
	g.mu.Lock()
	g.stopped = true
	kids := g.children
	g.mu.Unlock()
	grace := rt.config().grace
	if shuttingDown() {
		// The process exits after the hooks: orphans the reaper would
		// have adopted meanwhile die with the tree or at the sweep.
		defer g.ec.quiet()()
	}
	// Every child is signalled at once, and they share one grace period.
	// A worker that has not acknowledged Install yet is stopped on a
	// goroutine of its own, once it has.
	var running []*Child
	for _, c := range kids {
		select {
		case <-c.ready:
		default:
			go c.stop(ctx, grace)
			continue
		}
		if c.startStop(ctx) {
			running = append(running, c)
		}
	}
	if len(running) > 0 {
		grace := boundGrace(ctx, grace)
		t := time.NewTimer(grace)
		for i, c := range running {
			select {
			case <-c.exited:
				continue
			case <-t.C:
				for _, c := range running[i:] {
					c.killRunning(grace)
				}
			case <-ctx.Done():
				for _, c := range running[i:] {
					c.killRunning(0)
				}
			}
			break
		}
		t.Stop()
	}
	for _, c := range kids {
		<-c.done
	}
	g.ec.sweep(grace, rt.logger().Warn)
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

package multiexit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/multiexit/multiexit/internal/contain"
	"github.com/multiexit/multiexit/internal/ctl"
	"github.com/multiexit/multiexit/internal/listenfd"
	"github.com/multiexit/multiexit/internal/osproc"
	"github.com/multiexit/multiexit/internal/sdnotify"
)

// Starting children: Command (a worker: this binary, re-executed), the
// marks put on a command before Start (Command's, Foreground's), and Start
// itself. The entry Start pushes, and its stop, are stop.go's; a child's
// life after its start is child.go's; the process mechanics are
// internal/osproc's, the containment internal/contain's.

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
	exe, err := osproc.SelfExecutable()
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
	if cmd.Stdin == nil {
		// What os/exec would give it, but opened once, not at every
		// start (open, and five system calls to learn it cannot be
		// polled).
		if f := devNull(); f != nil {
			cmd.Stdin = f
		}
	}
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	env = sup.incarnationEnv(sdnotify.ScrubEnv(env))
	listenfd.Seal() // and the descriptors the LISTEN_ variables named
	worker := starts.workers.take(cmd)
	// The listeners come first: descriptors from 3 (see Listen).
	cmd.Env = env
	path := cmd.Path // the command's, not the exec shim's passListeners may put in its place
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
	if worker {
		c.worker = true
		ch, ids, err := ctl.Open(cmd, contain.Job(cfg.log), cfg.timeout)
		if err != nil {
			return nil, fmt.Errorf("multiexit: Start %s: control channel: %w", path, err)
		}
		c.ch = ch
		enc, err := ctl.Encode(os.Getpid(), ids, hooksJSON)
		if err != nil {
			ch.Close()
			return nil, fmt.Errorf("multiexit: Start %s: %w", path, err)
		}
		env = append(environWithout(env, EnvVar), EnvVar+"="+enc)
	} else {
		close(c.caught)
		close(c.ready)
		close(c.ackRead)
	}
	cmd.Env = env
	contain.Job(cfg.log) // on Windows: this process enters its job before its first child
	c.leader = osproc.Prepare(cmd)
	if foregrounds.take(cmd) {
		c.job = osproc.ToForeground(cmd)
	}
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = max(cfg.grace, 100*time.Millisecond)
	}
	release, err := ec.Prepare(cmd)
	if err == nil {
		c.started = time.Now()
		err = ec.ForkTracked(cmd, c.worker, osproc.StartCmd)
		release()
		handed = true
		if herr := handoff.Started(err); err == nil && herr != nil {
			// The exec shim could not execute the command: it exits 127.
			cmd.Wait()
			contain.Untrack(cmd)
			err = herr
		}
	}
	c.ch.Started()
	if err != nil {
		c.ch.Close()
		c.job.Drop()
		return nil, fmt.Errorf("multiexit: Start %s: %w", path, err)
	}
	// The reaper waits on a copy that holds exec's state (the process,
	// the pipes to close, the copying goroutines); the caller's command
	// looks waited for, so that its own Wait is refused (see Start).
	c.wait = new(exec.Cmd)
	*c.wait = *cmd
	cmd.ProcessState = waitRefused
	c.piped = readsPipe(cmd.Stdout) || readsPipe(cmd.Stderr)
	if c.ch != nil {
		go c.readAck()
	}
	c.job.Watch(c.jobTarget())
	sup.first(c)
	go c.reap()
	return c, nil
}

// waitRefused is a started command's ProcessState until Child.Wait returns:
// not nil, so that exec.Cmd.Wait refuses to run.
var waitRefused = new(os.ProcessState)

// devNull is the null device, opened once (nil if it cannot be): the
// standard input of the commands Start starts without one.
var devNull = sync.OnceValue(func() *os.File {
	f, err := os.Open(os.DevNull)
	if err != nil {
		return nil
	}
	return f
})

// readsPipe reports whether w is the child's end of a pipe that exec made
// for StdoutPipe or StderrPipe: exec.Cmd.Start closed it, and exec.Cmd.Wait
// will close the caller's end.
func readsPipe(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil || f == os.Stdout || f == os.Stderr {
		return false
	}
	_, err := f.Stat()
	return errors.Is(err, os.ErrClosed)
}

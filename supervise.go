package multiexit

// Supervised children: started again in their place when they exit by
// themselves, with a backoff and a limit, until the entry stops them.

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"time"
	"weak"
)

// Policy says when and how Supervise restarts a child. Its zero value is
// the default: restart after a failure only, at most 5 restarts in 10 s,
// the first at once and the next after 100 ms, doubling up to 30 s.
type Policy struct {
	// Always restarts the child after any exit by itself, a success (exit
	// status 0) too. By default only a failure is restarted: an exit
	// status other than 0, or death by a signal. A worker that wants to
	// end for good under Always calls Retire.
	Always bool
	// Burst and Interval are the intensity limit: a child that would be
	// restarted for the Burst+1-th time within Interval is not, and the
	// shutdown of the whole process begins, with exit status 1 and an
	// error that names the child and the limit (it wraps ErrRestartLimit).
	// It begins as a signal's does, not as Exit's: Run's main sees its
	// context cancelled with that error as the cause, and the hooks run
	// once main returned (within half the deadline). Defaults: 5 and 10 s, as
	// systemd's StartLimitBurst and StartLimitIntervalSec and Erlang/OTP's
	// supervisors. Unlike theirs, Interval is counted in the child's
	// running time — from each process's acknowledgement of Install (an
	// external command: its start) to its exit — so that neither a slow
	// start (a loaded machine, a large binary) nor the backoff waits can
	// spread a crash loop thin enough to escape the limit.
	Burst    int
	Interval time.Duration
	// Backoff is the wait before the second restart in a row (the first
	// is at once); each further one doubles it, up to MaxBackoff, with up
	// to a tenth of jitter either way. A process that ran (as above) for
	// Interval or longer before it exited starts the sequence again.
	// Defaults: 100 ms and 30 s.
	Backoff, MaxBackoff time.Duration
	// OnRestart, if set, is called after each restart — for a worker,
	// once the new process acknowledged Install — in its own goroutine,
	// with what happened.
	OnRestart func(RestartEvent)
}

// RestartEvent is one restart of a supervised child (see Policy.OnRestart).
type RestartEvent struct {
	Child   *Child           // the handle Start returned: its PID is now the new process's
	OldPID  int              // the process that exited
	Status  *os.ProcessState // how it exited
	Attempt int              // 1 for the child's first restart, and so on
	Delay   time.Duration    // the backoff waited before this start
}

// Supervise marks cmd, before Start, to be started again when it exits by
// itself (see Policy), and returns it. The new process takes the old one's
// place: the same position in the exit stack (its Start entry), the same
// *Child (whose PID changes), the same command line, environment, working
// directory and standard files. A worker (Command) gets the shared hooks it
// got at Start again, and can tell which start it is with Incarnation.
// Each restart is logged (at Warn for a failure) with the old status and
// the attempt number, and reported to Policy.OnRestart.
//
// A supervised child is never restarted once it is being stopped — by
// Stop, by its entry's turn in the shutdown — nor when its exit is seen
// after the shutdown began: a SIGTERM during a backoff wait cancels the
// restart at once, and no exit is counted against the limit then. An
// exit seen just before the shutdown begins (a crash racing a SIGTERM)
// may still be restarted: the new process is then stopped in its turn,
// with its hooks, like the others. A
// worker that exits before it acknowledged Install while Start waits for
// it fails Start, as an unsupervised one does: a child that cannot boot is
// not retried. After Start returned, a worker that dies before it
// acknowledges is a failure like any other.
//
// Child.Wait and the execute function of Child.Actor wait for the child's
// last process: the one that exited for good (by policy, Retire, Stop, the
// limit); Wait then returns what exec.Cmd.Wait returned for it and sets
// cmd's ProcessState to its state. Child.Stop stops the current process
// and ends the supervision; Signal and SignalGroup reach the current
// process (os.ErrProcessDone during a backoff wait).
//
// The command's output cannot be read through StdoutPipe or StderrPipe
// (a restart could not reopen the pipes): Start refuses that. An io.Reader
// that is not a file, as Stdin, is read by each process in turn from where
// the last one stopped.
func Supervise(cmd *exec.Cmd, p Policy) *exec.Cmd {
	supervised.add(cmd, p)
	return cmd
}

// supervised are the commands Supervise marked, by identity.
var supervised policies

type policies struct {
	mu sync.Mutex
	m  map[weak.Pointer[exec.Cmd]]Policy
}

func (ps *policies) add(cmd *exec.Cmd, p Policy) {
	w := weak.Make(cmd)
	ps.mu.Lock()
	if ps.m == nil {
		ps.m = map[weak.Pointer[exec.Cmd]]Policy{}
	}
	ps.m[w] = p
	ps.mu.Unlock()
	runtime.AddCleanup(cmd, func(w weak.Pointer[exec.Cmd]) {
		ps.mu.Lock()
		delete(ps.m, w)
		ps.mu.Unlock()
	}, w)
}

// take returns cmd's policy, if Supervise marked it, and forgets it.
func (ps *policies) take(cmd *exec.Cmd) (Policy, bool) {
	w := weak.Make(cmd)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p, ok := ps.m[w]
	delete(ps.m, w)
	return p, ok
}

// incarnationVar tells a supervised worker which start it is (see
// Incarnation). Start removes it from every child's environment but the
// restarted worker's own.
const incarnationVar = "MULTIEXIT_INCARNATION"

// Incarnation says which start of a supervised child this process is: 0
// for the first, n after n restarts (see Supervise). It is 0 in any other
// process.
func Incarnation() int {
	n, _ := strconv.Atoi(os.Getenv(incarnationVar))
	return n
}

// Retire ends this worker as Exit(code) does, and first tells its parent
// not to start it again, whatever its Policy (see Supervise): a deliberate
// end. In a process that is not a worker it is Exit(code).
func Retire(code int) {
	if ch := asWorker.ch.Load(); ch != nil {
		ch.Retire()
	}
	Exit(code)
}

// ErrRestartLimit is wrapped by the error that ends a process whose
// supervised child exited too often (see Policy).
var ErrRestartLimit = errors.New("restart limit reached")

package multiexit

// A worker: this binary as Command and Start run it. Package
// initialisation verifies the registry its parent passed (MULTIEXIT) and
// holds SIGTERM until Install; Install commits it (the inherited shared
// hooks at the bottom of the stack) and watches the parent through the
// control channel, whose lines give the worker its budget.

import (
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/multiexit/multiexit/internal/ctl"
	"github.com/multiexit/multiexit/internal/osproc"
)

// inherited is what a worker's Install decoded, before it commits to it.
type inherited struct {
	reg   *ctl.Registry
	hooks []*Handle
}

// asWorker is what package initialisation found of this process's start
// as a worker.
var asWorker struct {
	env string // MULTIEXIT as the process started; Install removes it from the environment
	set bool   // MULTIEXIT was set: this process is a worker
	// early holds a worker's SIGTERM from package initialisation until
	// Install: a parent may stop a worker before it has called Install,
	// and the worker must still run the hooks it registered (see Start).
	// It is caught only once the registry, the parent included, has been
	// verified.
	early chan os.Signal
	// reg is the registry init verified, so that a refused Install can
	// undo what init did.
	reg *ctl.Registry
	// ch is the worker's end of the control channel once Install opened
	// it (see Retire).
	ch atomic.Pointer[ctl.Worker]
}

// IsChild reports whether this process was started as a worker (by Command
// and Start): MULTIEXIT was set when it started.
func IsChild() bool { return asWorker.set }

// init verifies a worker's registry, changing nothing on error, and only
// then touches its descriptors: they become close-on-exec, so that what the
// worker runs before Install does not hold them.
func init() {
	asWorker.env, asWorker.set = os.LookupEnv(EnvVar)
	if !asWorker.set {
		return
	}
	reg, err := verifyRegistry(true)
	if err != nil {
		return // Install reports it
	}
	ctl.CloseOnExec(reg.IDs)
	asWorker.reg = reg
	asWorker.early = make(chan os.Signal, 8)
	signal.Notify(asWorker.early, syscall.SIGTERM)
	// Tell the parent that a SIGTERM can no longer kill this worker
	// without its hooks.
	ctl.SayCaught(reg.IDs)
}

// undoInit undoes what init did for a registry that Install then refused
// (a hook this binary does not define): SIGTERM is no longer held, and the
// descriptors are inheritable again.
func undoInit() {
	if asWorker.early == nil {
		return
	}
	signal.Stop(asWorker.early)
	asWorker.early = nil
	ctl.Inheritable(asWorker.reg.IDs)
}

// verifyRegistry decodes MULTIEXIT and checks that it was written for this
// process: by its parent, and (if control) with open pipes as the control
// channel.
func verifyRegistry(control bool) (*ctl.Registry, error) {
	reg, err := ctl.Decode(asWorker.env)
	if err != nil {
		return nil, err
	}
	if ppid := os.Getppid(); ppid != reg.PPID {
		return nil, fmt.Errorf("multiexit: %s: registry was written for parent PID %d, but this process's parent is %d (replayed, or the parent died)", EnvVar, reg.PPID, ppid)
	}
	if !control {
		return reg, nil
	}
	if err := ctl.Check(reg.IDs); err != nil {
		return nil, fmt.Errorf("multiexit: %s: control channel: %w", EnvVar, err)
	}
	return reg, nil
}

// decodeWorker checks the registry a worker inherited, changing nothing.
func decodeWorker() (*inherited, error) {
	if !asWorker.set {
		return nil, nil
	}
	reg := asWorker.reg // decoded and checked by init, unless it failed there
	if reg == nil || os.Getppid() != reg.PPID {
		var err error
		if reg, err = verifyRegistry(false); err != nil {
			return nil, err
		}
	}
	in := &inherited{reg: reg}
	defs.mu.Lock()
	defer defs.mu.Unlock()
	for i, w := range reg.Hooks {
		def, ok := defs.byName[w.N]
		if !ok {
			undoInit()
			return nil, fmt.Errorf("multiexit: %s: hook %d: %q is not defined in this binary (no Define(%q))", EnvVar, i, w.N, w.N)
		}
		hook, err := def.bind(w.A)
		if err != nil {
			undoInit()
			return nil, fmt.Errorf("multiexit: %s: hook %d: argument of %q (defined at %s): %v", EnvVar, i, w.N, def.where, err)
		}
		// Keep the argument: a worker's own workers inherit the hook too.
		in.hooks = append(in.hooks, &Handle{name: w.N, hook: hook, shared: &sharedArg{name: w.N, arg: w.A}})
	}
	if err := ctl.Check(reg.IDs); err != nil {
		return nil, fmt.Errorf("multiexit: %s: control channel: %w", EnvVar, err)
	}
	return in, nil
}

// workerControl is a worker's link to its parent: its end of the control
// channel (internal/ctl), as the shutdown asks of it (parentLink).
type workerControl struct {
	ppid int
	ch   *ctl.Worker
}

// commit makes the decoded registry this worker's (it reports whether the
// parent has died already: then the caller begins the shutdown, once the
// worker is in place): the inherited hooks at
// the bottom of the stack, MULTIEXIT out of the environment (so that the
// worker's own non-worker children do not inherit it), SIGPIPE caught and
// dropped, SIGINT caught (passed to the parent while this worker holds the
// terminal, see Foreground), and the parent watched: the end of the control
// channel. On Linux the kernel turns that end (and each line the parent
// writes) into SIGTERM (see ctl.OpenWorker), which begins the same shutdown
// with nothing kept waiting for it; elsewhere a goroutine reads the channel
// to its end.
func (in *inherited) commit() (w *workerControl, parentGone bool) {
	exitStack.pushBottom(in.hooks)
	os.Unsetenv(EnvVar)
	// Caught, not ignored: an ignored disposition would pass on to every
	// program this worker executes; a caught one is reset by exec. A caught
	// SIGPIPE makes a write to a dead parent's pipe fail with EPIPE instead
	// of killing the worker before its hooks ran. A SIGINT is the
	// terminal's Ctrl-C for the parent when this worker holds the
	// terminal (Foreground): osproc.RelayInterrupts passes it on.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	osproc.RelayInterrupts(in.reg.PPID)
	ch, hungUp := ctl.OpenWorker(in.reg.IDs)
	w = &workerControl{ppid: in.reg.PPID, ch: ch}
	if !ch.Signalled() {
		go w.watch()
	}
	return w, hungUp
}

// watch reads what the parent says until its end of the control channel
// closes: the parent died, however it died (on Windows: or stopped this
// worker).
func (w *workerControl) watch() {
	w.ch.Watch(rt.heardParent) // a stop's budget after the shutdown began
	w.parentDied()
}

// budget is the time the parent gives this worker to stop, if it said:
// deadline for its hooks, hard for everything (the late windows of hooks
// that overran included) before the parent's SIGKILL. If the parent has
// died, the budget is what is left to its guardian: the parent's deadline,
// counted from when this worker saw the death (the guardian counts from
// the same moment, its own pipe's end), whichever order the kernel's
// word of it came in. The shorter of the two counts. The margins leave
// the worker room to abandon a hook, and the parent room to see it exit,
// before the parent's own time runs out.
func (w *workerControl) budget() (deadline, hard time.Duration, died bool) {
	d, died := w.ch.Left()
	deadline, hard = splitBudget(d)
	return deadline, hard, died
}

// splitBudget splits d, the time a worker has before its parent's SIGKILL,
// into the deadline for its hooks and the hard end of the late windows.
// Between the two the worker must be able to abandon a hook that overran
// the deadline (abandonSlack) and still give the hooks after it a window:
// so the deadline keeps a tenth of d back, at least twice abandonSlack, at
// most half of d and 500 ms; the hard end leaves the parent a fiftieth of
// d, at most 50 ms, to see the worker exit. Zero for d <= 0.
func splitBudget(d time.Duration) (deadline, hard time.Duration) {
	if d <= 0 {
		return 0, 0
	}
	reserve := min(max(d/10, 2*abandonSlack), d/2, 500*time.Millisecond)
	return d - reserve, d - min(d/50, 50*time.Millisecond)
}

// link is w as the shutdown's parentLink: nil (not a typed nil) in a
// parent, which has no workerControl.
func (w *workerControl) link() parentLink {
	if w == nil {
		return nil
	}
	return w
}

func (w *workerControl) deathCause() error {
	return fmt.Errorf("multiexit: parent process %d died", w.ppid)
}

// parentDied begins the shutdown, or, if it has begun, gives it the time
// the parent's death leaves (see budget).
func (w *workerControl) parentDied() {
	if !rt.begin(128+int(syscall.SIGTERM), syscall.SIGTERM, w.deathCause(), byParentDeath) {
		rt.heardParent()
	}
}

// acknowledge tells the parent that Install ran (see ctl.Worker).
func (w *workerControl) acknowledge() {
	w.ch.Acknowledge()
	asWorker.ch.Store(w.ch)
}

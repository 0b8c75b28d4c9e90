package contain

// The tree: the layer Init chooses, the state that every entry of this
// process shares (what is tracked, adopted, waited for), the tree's cgroup
// and its guardian, made at the first Start, and Close at exit.

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// tree is the containment of this process: its entries share it.
var tree struct {
	mu      sync.Mutex // held across a fork and its tracking, and by the reaper
	root    string     // the tree's cgroup (Cgroup), made at the first Start
	lock    *os.File   // root's lock (see lockCgroup), held from its making on; nil before
	seq     int
	prefix  string            // "<pid>.": the tags of this process's entries
	tracked map[int]*exec.Cmd // children whose status exec.Cmd.Wait owns
	// adopted: orphans seen alive that belong to one of our entries,
	// with that entry's tag (see ownerOf)
	adopted map[int]string
	// started: by PID, the entries that started a child with that PID,
	// alive or dead, until they are released (more than one if a dead
	// child's PID was reused): the orphans of that child's own tree
	// carry tags "<pid>.<n>" (see ownerOf)
	started map[int][]*Entry
	// owners: whether a zombie child that no Start entry claims can be
	// told from one an os.Process will wait for (see unowned).
	owners bool
	pid1   bool
	// lingering: zombies, as PID 1 where owners is false, that no one
	// has claimed yet
	lingering map[int]bool
	// waiting: entries whose children are gone but whose descendants
	// live on; released when they are gone too (see WhenEmpty)
	waiting map[*Entry]func()
	// Quiet counts the entries being stopped in the shutdown: their
	// children's exits are theirs to reap, and the sweep that ends each
	// stop reaps orphans, so the reaper does not scan on every SIGCHLD
	// meanwhile. missed says it skipped one.
	quiet  int
	missed bool

	guard  *guardianLink // the cgroup layer's, started at the first Start (or by Prepare)
	closed bool          // Close ran: Prepare makes nothing any more
	cfg    Config        // Init's: the deadlines, the guardian's binary and environment
}

// Init chooses the layer: cgroup v2 where a writable hierarchy exists,
// else the subreaper, else process groups, capped by Var. On the first two
// the process becomes a child subreaper, and starts the reaper: it reaps
// the orphans of the tree, and every other zombie child that no os.Process
// will wait for (the orphans of commands it shells out to), so that none
// piles up. Called once, at Install; without it an entry is contained by
// process groups alone.
func Init(cfg Config) {
	traced := false
	defer func() {
		if traced {
			resolveProbe()
		}
	}()
	tree.mu.Lock()
	defer tree.mu.Unlock()
	tree.tracked = map[int]*exec.Cmd{}
	tree.adopted = map[int]string{}
	tree.started = map[int][]*Entry{}
	tree.lingering = map[int]bool{}
	tree.waiting = map[*Entry]func(){}
	tree.prefix = strconv.Itoa(os.Getpid()) + "."
	tree.pid1 = os.Getpid() == 1
	tree.cfg = cfg
	probing.Store(false)
	log := cfg.Log
	setLayer(ProcessGroup)
	limit := os.Getenv(Var)
	switch limit {
	case "", ProcessGroup.String(), Subreaper.String(), Cgroup.String():
	default:
		log.Warn("multiexit: unknown containment layer; ignored", "var", Var, "value", limit,
			"known", Cgroup.String()+", "+Subreaper.String()+", "+ProcessGroup.String())
	}
	if limit == ProcessGroup.String() {
		if tree.pid1 {
			tree.owners = pidfdsOwnChildren()
			go reaper()
		}
		return
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		log.Warn("multiexit: cannot become a child subreaper; containment is by process group only", "err", err)
		return
	}
	setLayer(Subreaper)
	tree.owners = pidfdsOwnChildren()
	if !tree.owners && !tree.pid1 {
		log.Warn("multiexit: this kernel gives Go no pidfds: the zombies of orphans that are not of a Start entry (background jobs of commands this process runs) are not reaped; set " + Var + "=process-group to leave them to init")
	}
	var err error
	switch {
	case limit == Subreaper.String():
		err = errors.New(Var + "=subreaper")
	case tree.pid1 && limit == "":
		// The kernel kills every process of the namespace when its
		// PID 1 dies, the guardian with them: a tree cgroup would
		// outlive a SIGKILL or a crash of this process. The namespace
		// is the last line of defence instead, and the children are
		// started with the same cap (see Prepare), so that no
		// multiexit program below makes one either.
		err = errors.New("PID 1 of its PID namespace: no tree cgroup (the namespace dies with it); " + Var + "=cgroup makes one")
	default:
		// The probe, which changes nothing, is left to the first need
		// of the layer (a Start, Prepare, Containment): most workers
		// start no children, and for them it was a third of Install.
		probing.Store(true)
	}
	go reaper()
	if cfg.Trace && !probing.Load() {
		log.Info("multiexit: containment", "layer", Current().String(), "cgroup_unavailable", errString(err))
	}
	// With Trace, the probe is made now, to be logged (once tree.mu is
	// released: the probe takes it).
	traced = cfg.Trace && probing.Load()
}

// probing says that Init left the cgroup layer's probe for later (see
// resolveProbe). It is set by Init and cleared under tree.mu.
var probing atomic.Bool

// resolveProbe decides, once, between the cgroup and the subreaper layer
// that Init left open: the cgroup layer if a writable cgroup v2 holds
// this process, the tree's cgroup's path then set (the cgroup itself is
// made at the first Start). It reads only this process's own files, and
// not under tree.mu. Called before anything that depends on the layer
// looks at it: NewEntry, Prepare, Resolved.
func resolveProbe() {
	if !probing.Load() {
		return
	}
	root, err := treeCgroupPath()
	tree.mu.Lock()
	defer tree.mu.Unlock()
	if !probing.CompareAndSwap(true, false) {
		return // another call decided first
	}
	if err == nil {
		tree.root = root
		setLayer(Cgroup)
	}
	if tree.cfg.Trace {
		tree.cfg.Log.Info("multiexit: containment", "layer", Current().String(), "cgroup", tree.root, "cgroup_unavailable", errString(err))
	}
}

// Resolved is the layer in use, once the probe that Init left open has
// been made (see resolveProbe).
func Resolved() Layer {
	resolveProbe()
	return Current()
}

// pidfdsOwnChildren reports whether the kernel gives Go's os package
// pidfds (Linux 5.4 and later, as os checks): then every child started
// through os/exec or os.StartProcess holds one, from its fork until it is
// waited for, which is how the reaper tells a zombie someone will wait for
// from one nobody will.
func pidfdsOwnChildren() bool {
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PIDFD, fd, &info, unix.WEXITED|unix.WNOHANG, nil); err != unix.ECHILD {
		return false
	}
	return unix.PidfdSendSignal(fd, 0, nil, 0) == nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Prepare makes the tree's cgroup and starts its guardian now, in the
// background, instead of at the first Start (which waits for it, if it
// is not done by then): for a process that is about to start children,
// such as multiexit's command-line tool, the guardian's start then runs
// beside the rest of its own. It does nothing but on the cgroup layer, or
// if they are made already. The guarantee is the same as at Start: the
// first Start forks no child before the guardian is forked (NewEntry
// waits for tree.mu, which this holds until then), and a guardian that is
// forked is armed, started or not: it holds the pipe's read end and the
// tree's lock from its fork on, and when the pipe closes it acts on the
// cgroup, which holds whatever the children started, whatever it had
// time to read of this process's messages by then.
func Prepare() {
	if !probing.Load() && Current() != Cgroup {
		return
	}
	go func() {
		resolveProbe()
		tree.mu.Lock()
		defer tree.mu.Unlock()
		if Current() == Cgroup && !tree.closed {
			prepareTree(tree.cfg.Log)
		}
	}()
}

// prepareTree makes the tree's cgroup and starts its guardian, once, on
// the cgroup layer, and reports whether both are there. What it cannot
// make falls back to the subreaper layer, with a warning to log. Called
// with tree.mu held.
func prepareTree(log *slog.Logger) bool {
	if tree.lock == nil {
		lock, err := makeTreeRoot()
		if err != nil {
			// The probe at Install said yes, the kernel says no: fall
			// back to the subreaper layer rather than fail Start.
			log.Warn("multiexit: cannot make the tree's cgroup; containment falls back to the subreaper layer", "err", err)
			tree.root = ""
			setLayer(Subreaper)
			return false
		}
		tree.lock = lock
	}
	if err := ensureGuardian(); err != nil {
		// Without a guardian a SIGKILL of this process would leave
		// the tree's escapees: the subreaper layer promises no more.
		log.Warn("multiexit: cannot start the guardian; containment falls back to the subreaper layer", "err", err)
		killCgroup(tree.root, time.Second)
		tree.lock.Close()
		tree.root, tree.lock = "", nil
		setLayer(Subreaper)
		return false
	}
	return true
}

// ensureGuardian starts the tree's guardian, once. Called with tree.mu
// held.
func ensureGuardian() error {
	if tree.guard != nil {
		return nil
	}
	exe, env := os.Executable, os.Environ
	if tree.cfg.Executable != nil {
		exe = tree.cfg.Executable
	}
	if tree.cfg.GuardianEnv != nil {
		env = tree.cfg.GuardianEnv
	}
	g, err := startGuardian(exe, tree.root, tree.lock, tree.cfg.Timeout, env())
	if err != nil {
		return err
	}
	tree.guard = g
	tree.tracked[g.cmd.Process.Pid] = g.cmd // Close waits for it
	// What an external child and the rest of the tree get if this
	// process dies: the grace period, as in its own stop.
	g.tell("grace " + strconv.FormatInt(int64(tree.cfg.Grace), 10))
	return nil
}

// Close runs at exit, after the hooks: the tree is empty, so this process
// removes its cgroups itself (killing whatever is left in them first, as
// the guardian would), and kills and reaps the guardian, which has
// nothing left to do: nothing of this process outlives it. Only if a
// cgroup could not be emptied is the guardian left to retry once this
// process is gone.
func Close() {
	tree.mu.Lock()
	g, root, lock := tree.guard, tree.root, tree.lock
	tree.guard, tree.closed = nil, true
	tree.mu.Unlock()
	if root == "" || lock == nil {
		return
	}
	if g != nil && unpopulated(root) {
		// The usual end: the guardian is killed first and exits while
		// the empty directories are removed. (Should a removal fail,
		// the next Start beside them removes them: they are stale.)
		g.kill()
		removeCgroup(root)
		g.reap()
		return
	}
	err := killCgroup(root, time.Second)
	switch {
	case g == nil:
	case err != nil:
		g.leave()
	default:
		g.kill()
		g.reap()
	}
}

// makeTreeRoot makes the tree's cgroup, after removing those left by dead
// trees (see cleanStaleCgroups), and locks it (see lockCgroup) for the life
// of this process and of its guardian, which inherits the lock: so no
// other program takes the tree for stale while the guardian waits for the
// workers of this process, SIGKILLed, to finish their hooks. The directory
// is mode 0711: other users can reach the entries' cgroups below it (a
// descendant that dropped its privileges reads its own cgroup's files),
// but cannot open it, so cannot hold its lock and keep a dead tree from
// being cleaned up. A program of another PID namespace may take the new
// directory for stale between its making and its locking: then it is made
// again.
func makeTreeRoot() (*os.File, error) {
	cleanStaleCgroups(filepath.Dir(tree.root))
	for try := 0; ; try++ {
		if err := os.Mkdir(tree.root, 0o711); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		if _, err := os.Stat(filepath.Join(tree.root, "cgroup.kill")); err != nil {
			os.Remove(tree.root)
			return nil, errors.New("cgroup.kill is not supported (Linux 5.14 or later needed)")
		}
		lock, err := lockCgroup(tree.root)
		if err == nil && sameFile(lock, tree.root) {
			return lock, nil
		}
		if lock != nil {
			lock.Close()
		}
		if try == 4 {
			if err == nil {
				err = fmt.Errorf("%s was removed as it was made", tree.root)
			}
			return nil, err
		}
		time.Sleep(10 * time.Millisecond) // the other program removes it
	}
}

package contain

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/multiexit/multiexit/internal/procfs"
	"golang.org/x/sys/unix"
)

// treeVar tags every child that Start starts, and so every descendant that
// keeps its environment, with "<parent pid>.<entry>": an orphan that
// reparents to this process (a subreaper) says which entry it belongs to.
// A worker tags its own children with its own PID; when it dies without
// stopping them (SIGKILL), their orphans reparent to this process with a
// tag "<worker pid>.<n>", and belong to the entry that started the worker
// (see ownerOf).
const treeVar = "MULTIEXIT_TREE"

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

	guard *guardianLink // the cgroup layer's, started at the first Start
	cfg   Config        // Init's: the deadlines, the guardian's binary and environment
}

// Init chooses the layer: cgroup v2 where a writable hierarchy exists,
// else the subreaper, else process groups, capped by Var. On the first two
// the process becomes a child subreaper, and starts the reaper: it reaps
// the orphans of the tree, and every other zombie child that no os.Process
// will wait for (the orphans of commands it shells out to), so that none
// piles up. Called once, at Install; without it an entry is contained by
// process groups alone.
func Init(cfg Config) {
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
	root, err := "", errors.New(Var+"=subreaper")
	switch {
	case limit == Subreaper.String():
	case tree.pid1 && limit == "":
		// The kernel kills every process of the namespace when its
		// PID 1 dies, the guardian with them: a tree cgroup would
		// outlive a SIGKILL or a crash of this process. The namespace
		// is the last line of defence instead, and the children are
		// started with the same cap (see Prepare), so that no
		// multiexit program below makes one either.
		err = errors.New("PID 1 of its PID namespace: no tree cgroup (the namespace dies with it); " + Var + "=cgroup makes one")
	default:
		// A probe that changes nothing: the tree's cgroup is made at
		// the first Start, so a process that never starts children
		// (most workers) makes and removes none.
		root, err = treeCgroupPath()
	}
	if err == nil {
		tree.root = root
		setLayer(Cgroup)
	}
	go reaper()
	if cfg.Trace {
		log.Info("multiexit: containment", "layer", Current().String(), "cgroup", tree.root, "cgroup_unavailable", errString(err))
	}
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

// Entry is one Start entry's share of the tree. Its methods do nothing
// where the layer has nothing to do, and a nil *Entry is not valid.
type Entry struct {
	tag    string       // MULTIEXIT_TREE value of its children
	cg     string       // its cgroup (Cgroup)
	termed map[int]bool // orphans sent SIGTERM in its stop
	// kids: the start times (see procfs.StartTicks) of the children it
	// started, by PID, under tree.mu; indexed in tree.started
	kids map[int]uint64
	// kept: pidfds of what its children left in their process groups
	// when they exited before its stop (process-group layer: see
	// keepGroup), under tree.mu
	kept []int
}

// NewEntry makes the containment of a new Start entry: on the cgroup
// layer its cgroup, the tree's (and the guardian) at the first call. What
// it cannot make falls back to the subreaper layer, with a warning to log;
// the error is a cgroup that could not be made for an entry.
func NewEntry(log *slog.Logger) (*Entry, error) {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	if tree.prefix == "" { // Install was not called: process groups only
		return &Entry{}, nil
	}
	tree.seq++
	e := &Entry{tag: tree.prefix + strconv.Itoa(tree.seq), termed: map[int]bool{}, kids: map[int]uint64{}}
	if Current() == Cgroup {
		if tree.lock == nil {
			lock, err := makeTreeRoot()
			if err != nil {
				// The probe at Install said yes, the kernel says no: fall
				// back to the subreaper layer rather than fail Start.
				log.Warn("multiexit: cannot make the tree's cgroup; containment falls back to the subreaper layer", "err", err)
				tree.root = ""
				setLayer(Subreaper)
				return e, nil
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
			return e, nil
		}
		e.cg = filepath.Join(tree.root, "e"+strconv.Itoa(tree.seq))
		if err := os.Mkdir(e.cg, 0o755); err != nil {
			return nil, fmt.Errorf("multiexit: Start: cgroup for the children: %w", err)
		}
	}
	return e, nil
}

// Release ends the entry's containment once nothing of it is alive (or
// its stop has swept what was): it forgets the PIDs of its children, and
// removes its cgroup.
func (e *Entry) Release() {
	tree.mu.Lock()
	delete(tree.waiting, e)
	for pid := range e.kids {
		tree.started[pid] = slices.DeleteFunc(tree.started[pid], func(o *Entry) bool { return o == e })
		if len(tree.started[pid]) == 0 {
			delete(tree.started, pid)
		}
	}
	e.kids = nil
	tree.mu.Unlock()
	if e.cg != "" {
		removeCgroup(e.cg)
	}
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

// Close runs at exit, after the hooks: the tree is empty, so
// the guardian only removes the cgroups; it is waited for, so that nothing
// of the tree outlives this process.
func Close() {
	tree.mu.Lock()
	g, root, lock := tree.guard, tree.root, tree.lock
	tree.guard = nil
	tree.mu.Unlock()
	if g != nil {
		g.close()
	} else if root != "" && lock != nil {
		killCgroup(root, time.Second)
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

// Prepare tags cmd and, in the cgroup layer, starts it straight into the
// entry's cgroup (unless the caller chose a cgroup). It returns what to
// release once the command has started.
func (e *Entry) Prepare(cmd *exec.Cmd) (release func(), err error) {
	if e.tag == "" {
		return func() {}, nil
	}
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	// First, so that a bounded read of the environment finds it (see
	// envOf), whatever the size of the rest.
	cmd.Env = append([]string{treeVar + "=" + childTag(e.tag)}, without(env, treeVar)...)
	if tree.pid1 && Current() != Cgroup && !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, Var+"=") }) {
		// As PID 1, nothing below makes a tree cgroup either (see
		// Init), unless the caller's environment says.
		cmd.Env = append(cmd.Env, Var+"="+Current().String())
	}
	a := cmd.SysProcAttr
	if e.cg == "" || a.UseCgroupFD {
		return func() {}, nil
	}
	fd, err := unix.Open(e.cg, unix.O_DIRECTORY|unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("multiexit: Start: open cgroup %s: %w", e.cg, err)
	}
	a.UseCgroupFD, a.CgroupFD = true, fd
	return func() { unix.Close(fd) }, nil
}

// ForkTracked starts cmd for the entry and records its PID as one whose
// status exec.Cmd.Wait owns, before the reaper can look at it, and as one
// of the entry's children, with its start time: after the child is gone,
// orphans of its own tree still say which entry they belong to (ownerOf).
// start is what starts it (cmd.Start, or the caller's fork thread); a
// worker is a child that runs its own hooks when this process dies (the
// guardian gives it the deadline).
func (e *Entry) ForkTracked(cmd *exec.Cmd, worker bool, start func(*exec.Cmd) error) error {
	tree.mu.Lock()
	if err := start(cmd); err != nil {
		tree.mu.Unlock()
		return err
	}
	pid := cmd.Process.Pid
	if tree.tracked != nil {
		tree.tracked[pid] = cmd
	}
	if worker {
		tree.guard.tell("+" + strconv.Itoa(pid) + " w")
	} else {
		tree.guard.tell("+" + strconv.Itoa(pid))
	}
	tree.mu.Unlock()
	if e.kids == nil {
		return nil
	}
	// It is tracked: alive or an unreaped zombie, so this is its start
	// time (read without tree.mu: no read of /proc under it).
	born, ok := procfs.StartTicks(pid)
	if !ok {
		return nil
	}
	tree.mu.Lock()
	defer tree.mu.Unlock()
	if _, again := e.kids[pid]; !again {
		tree.started[pid] = append(tree.started[pid], e)
	}
	e.kids[pid] = born
	return nil
}

// Untrack forgets cmd once it was waited for (not a later child that got
// its PID).
func Untrack(cmd *exec.Cmd) {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	pid := cmd.Process.Pid
	if tree.tracked[pid] == cmd {
		delete(tree.tracked, pid)
	}
	tree.guard.tell("-" + strconv.Itoa(pid))
}

// TermEscapees sends SIGTERM (and SIGCONT), as the entry's stop begins, to
// what its children left outside their process groups (groups): the
// descendants of its external children (externals) in other groups,
// processes directly in the entry's cgroup, but for those of workers (whose
// own children are theirs to stop), and orphans that belong to the entry
// (its tag's, and those of the trees of its children: see ownerOf). So
// everything of the entry shares one grace period; the sweep kills what is
// left at its end.
func (e *Entry) TermEscapees(groups, externals, workers []int, log func(msg string, args ...any)) {
	e.signalKept(unix.SIGTERM, unix.SIGCONT)
	if e.tag == "" || Current() == ProcessGroup {
		return
	}
	// Sets, not slices: an entry may have a thousand children, and every
	// process of its cgroup is looked up.
	groupSet, workerSet, kids := map[int]bool{}, map[int]bool{}, map[int]bool{}
	for _, g := range groups {
		groupSet[g] = true
	}
	for _, w := range workers {
		workerSet[w], kids[w] = true, true
	}
	var found []int
	for _, pid := range externals {
		kids[pid] = true
		found = termOutside(pid, groupSet, 0, found)
	}
	for _, pid := range found {
		e.termed[pid] = true // once: a second SIGTERM may run a trap twice
	}
	if e.cg != "" {
		var out []int
		for _, pid := range found {
			if !inCgroup(pid, e.cg) {
				out = append(out, pid)
			}
		}
		if len(out) > 0 {
			log("multiexit: descendants left the entry's cgroup; stopping them by PID", "cgroup", e.cg, "pids", out)
		}
	}
	// The children themselves are stopped through their groups: no
	// system call for them.
	skip := func(pid int) bool {
		if kids[pid] {
			return true
		}
		pgid, err := unix.Getpgid(pid)
		return err != nil || groupSet[pgid] || workerSet[procfs.PPid(pid)]
	}
	if e.cg != "" {
		b, _ := os.ReadFile(filepath.Join(e.cg, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && !e.termed[pid] && !skip(pid) {
				e.termed[pid] = true
				signalInCgroup(pid, e.cg, unix.SIGTERM, unix.SIGCONT)
			}
		}
	}
	left, _ := adoptedWith(e.tag)
	for _, pid := range left {
		if !skip(pid) && !e.termed[pid] {
			e.termed[pid] = true
			signalAdopted(pid, unix.SIGTERM, unix.SIGCONT)
		}
	}
}

// Sweep runs after the entry's children were stopped: whatever of the
// entry is left — descendants that left their process groups — gets
// SIGTERM now and SIGKILL at end, the end of the entry's one grace period
// (cgroup.kill in the cgroup layer), and is reaped. Orphans that appear
// while it runs (the children of a killed escapee) get SIGKILL at once
// once end has passed: nothing of the entry gets a second grace period.
func (e *Entry) Sweep(end time.Time, log func(msg string, args ...any)) {
	e.stopKept(end)
	if e.cg != "" {
		if reapOrphans().untracked == 0 && unpopulated(e.cg) { // adopt the live ones first
			// The common case: the children took their descendants
			// with them. No orphan is this process's child, so none
			// is adopted, and nothing is in the cgroup to kill.
			if err := removeCgroup(e.cg); err != nil {
				log("multiexit: cannot remove the entry's cgroup", "cgroup", e.cg, "err", err)
			}
			return
		}
		if left := cgroupProcs(e.cg); len(left) > 0 {
			for _, pid := range left {
				if !e.termed[pid] {
					e.termed[pid] = true
					signalInCgroup(pid, e.cg, unix.SIGTERM, unix.SIGCONT)
				}
			}
			if !waitEmpty(e.cg, time.Until(end)) {
				log("multiexit: descendants that left their process group did not stop within the grace period; killing the cgroup",
					"cgroup", e.cg, "pids", cgroupProcs(e.cg))
			}
		}
		os.WriteFile(filepath.Join(e.cg, "cgroup.kill"), []byte("1"), 0)
		if !waitEmpty(e.cg, 5*time.Second) {
			log("multiexit: processes are left in the entry's cgroup after cgroup.kill", "cgroup", e.cg, "pids", cgroupProcs(e.cg))
		}
		reapOrphans() // the killed orphans are our zombies now
		if err := removeCgroup(e.cg); err != nil {
			log("multiexit: cannot remove the entry's cgroup", "cgroup", e.cg, "err", err)
		}
	}
	if e.tag == "" {
		return
	}
	// Orphans that reparented to this process and belong to the entry
	// (see ownerOf): in the cgroup layer, only those that moved
	// themselves out of it.
	termed := e.termed
	warned := false
	for d, empty := 100*time.Microsecond, 0; ; {
		// Until two scans in a row find nothing of the entry: a
		// descendant that keeps forking a successor and exiting is
		// reparented here after the scan that saw its parent (pending).
		left, s := adoptedWith(e.tag)
		if len(left) == 0 {
			if s.pending == 0 {
				if empty++; empty == 2 {
					return
				}
				continue
			}
			empty = 0
			if time.Now().After(end.Add(5 * time.Second)) {
				log("multiexit: children of this process are still exiting; what they leave may not be stopped", "pending", s.pending)
				return
			}
			time.Sleep(d)
			d = min(2*d, 20*time.Millisecond)
			continue
		}
		empty = 0
		late := !time.Now().Before(end)
		if e.cg != "" && !warned {
			log("multiexit: descendants left the entry's cgroup; stopping them by PID", "cgroup", e.cg, "pids", left)
		}
		if late && !warned && len(termed) > 0 {
			log("multiexit: orphaned descendants did not stop within the grace period; killing them", "pids", left)
		}
		warned = warned || late || e.cg != ""
		for _, pid := range left {
			switch {
			case late:
				signalAdopted(pid, unix.SIGKILL)
			case !termed[pid]:
				termed[pid] = true
				signalAdopted(pid, unix.SIGTERM, unix.SIGCONT)
			}
		}
		until := end
		if late {
			until = time.Now().Add(5 * time.Second)
		}
		if !waitAnyGone(left, until) && late {
			log("multiexit: orphaned descendants are left after SIGKILL", "pids", left)
			return
		}
	}
}

// termOutside sends SIGTERM and SIGCONT to the descendants of parent (a
// live or unreaped child of this process, or one checked below it) that
// are not in one of groups, with their own descendants.
func termOutside(parent int, groups map[int]bool, depth int, found []int) []int {
	if depth > 64 {
		return found
	}
	for _, c := range pinChildren(parent) {
		if pgid, err := unix.Getpgid(c.pid); err == nil && !groups[pgid] {
			signalTree(c.pid, depth+1, func(sig unix.Signal) { unix.PidfdSendSignal(c.fd, sig, nil, 0) },
				[]unix.Signal{unix.SIGTERM, unix.SIGCONT})
			found = append(found, c.pid)
		} else {
			found = termOutside(c.pid, groups, depth+1, found)
		}
		unix.Close(c.fd)
	}
	return found
}

// pinnedChild is a child of a process, opened as a pidfd once it was
// listed and then checked to be that process's child still, and alive: the
// pidfd names that process, whatever happens to its PID.
type pinnedChild struct{ pid, fd int }

// pinChildren lists and pins parent's children (see pinnedChild); the
// caller closes their pidfds. parent itself must be pinned (this process's
// unreaped child, or a pinned child of a pinned process).
func pinChildren(parent int) []pinnedChild {
	var out []pinnedChild
	for _, pid := range procfs.Children(parent) {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue
		}
		if procfs.PPid(pid) != parent || unix.PidfdSendSignal(fd, 0, nil, 0) != nil {
			unix.Close(fd)
			continue
		}
		out = append(out, pinnedChild{pid, fd})
	}
	return out
}

// signalTree signals root (through signalRoot) and then its descendants,
// each parent before its children. The descendants are listed and pinned
// before any signal is sent: each is opened as a pidfd once it was listed
// and checked to be the child of its parent still (root itself is pinned
// by the caller: this process's unreaped child, or a descendant whose pidfd
// is open and checked alive), so the signals reach every process listed
// even if it reparents in between (to this process, untagged). Parents
// first: a parent that handles SIGTERM (a shell with a trap) has it pending
// before its children die, so it does not start another child — which it
// would wait for before running its trap — in between.
func signalTree(root, depth int, signalRoot func(unix.Signal), sigs []unix.Signal) {
	fds := pinDescendants(root, depth, nil)
	for _, sig := range sigs {
		signalRoot(sig)
	}
	for _, fd := range fds {
		for _, sig := range sigs {
			unix.PidfdSendSignal(fd, sig, nil, 0)
		}
		unix.Close(fd)
	}
}

// pinDescendants appends pidfds of parent's descendants to fds, each
// parent before its children (see signalTree).
func pinDescendants(parent, depth int, fds []int) []int {
	if depth > 64 {
		return fds
	}
	for _, c := range pinChildren(parent) {
		fds = pinDescendants(c.pid, depth+1, append(fds, c.fd))
	}
	return fds
}

// without returns env without the variable name, in a new slice.
func without(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

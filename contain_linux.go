package multiexit

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

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
	root    string     // the tree's cgroup (LayerCgroup), made at the first Start
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
	started map[int][]*entryContainment
	// owners: whether a zombie child that no Start entry claims can be
	// told from one an os.Process will wait for (see unowned).
	owners bool
	pid1   bool
	// lingering: zombies, as PID 1 where owners is false, that no one
	// has claimed yet
	lingering map[int]bool
	// waiting: entries whose children are gone but whose descendants
	// live on; released when they are gone too (see whenEmpty)
	waiting map[*entryContainment]func()
	// quiet counts the entries being stopped in the shutdown: their
	// children's exits are theirs to reap, and the sweep that ends each
	// stop reaps orphans, so the reaper does not scan on every SIGCHLD
	// meanwhile. missed says it skipped one.
	quiet  int
	missed bool

	guard   *guardianLink // the cgroup layer's, started at the first Start
	timeout time.Duration // the shutdown deadline, for the guardian
}

// initContainment chooses the layer: cgroup v2 where a writable hierarchy
// exists, else the subreaper, else process groups. On the first two the
// process becomes a child subreaper, and starts the reaper: it reaps the
// orphans of the tree, and every other zombie child that no os.Process
// will wait for (the orphans of commands it shells out to), so that none
// piles up. timeout is the shutdown deadline (the guardian's wait), log
// the process's logger; trace logs the choice.
func initContainment(timeout time.Duration, log *slog.Logger, trace bool) {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	tree.tracked = map[int]*exec.Cmd{}
	tree.adopted = map[int]string{}
	tree.started = map[int][]*entryContainment{}
	tree.lingering = map[int]bool{}
	tree.waiting = map[*entryContainment]func(){}
	tree.prefix = strconv.Itoa(os.Getpid()) + "."
	tree.pid1 = os.Getpid() == 1
	tree.timeout = timeout
	setLayer(LayerProcessGroup)
	limit := os.Getenv(ContainmentVar)
	switch limit {
	case "", LayerProcessGroup.String(), LayerSubreaper.String(), LayerCgroup.String():
	default:
		log.Warn("multiexit: unknown containment layer; ignored", "var", ContainmentVar, "value", limit,
			"known", LayerCgroup.String()+", "+LayerSubreaper.String()+", "+LayerProcessGroup.String())
	}
	if limit == LayerProcessGroup.String() {
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
	setLayer(LayerSubreaper)
	tree.owners = pidfdsOwnChildren()
	if !tree.owners && !tree.pid1 {
		log.Warn("multiexit: this kernel gives Go no pidfds: the zombies of orphans that are not of a Start entry (background jobs of commands this process runs) are not reaped; set " + ContainmentVar + "=process-group to leave them to init")
	}
	root, err := "", errors.New(ContainmentVar+"=subreaper")
	if limit != LayerSubreaper.String() {
		// A probe that changes nothing: the tree's cgroup is made at
		// the first Start, so a process that never starts children
		// (most workers) makes and removes none.
		root, err = treeCgroupPath()
	}
	if err == nil {
		tree.root = root
		setLayer(LayerCgroup)
	}
	go reaper()
	if trace {
		log.Info("multiexit: containment", "layer", Containment().String(), "cgroup", tree.root, "cgroup_unavailable", errString(err))
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

// entryContainment is one Start entry's share of the tree.
type entryContainment struct {
	tag    string       // MULTIEXIT_TREE value of its children
	cg     string       // its cgroup (LayerCgroup)
	termed map[int]bool // orphans sent SIGTERM in its stop
	// kids: the start times (see startTicks) of the children it
	// started, by PID, under tree.mu; indexed in tree.started
	kids map[int]uint64
}

func newEntryContainment(log *slog.Logger) (*entryContainment, error) {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	if tree.prefix == "" { // Install was not called: process groups only
		return &entryContainment{}, nil
	}
	tree.seq++
	e := &entryContainment{tag: tree.prefix + strconv.Itoa(tree.seq), termed: map[int]bool{}, kids: map[int]uint64{}}
	if Containment() == LayerCgroup {
		if tree.lock == nil {
			lock, err := makeTreeRoot()
			if err != nil {
				// The probe at Install said yes, the kernel says no: fall
				// back to the subreaper layer rather than fail Start.
				log.Warn("multiexit: cannot make the tree's cgroup; containment falls back to the subreaper layer", "err", err)
				tree.root = ""
				setLayer(LayerSubreaper)
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
			setLayer(LayerSubreaper)
			return e, nil
		}
		e.cg = filepath.Join(tree.root, "e"+strconv.Itoa(tree.seq))
		if err := os.Mkdir(e.cg, 0o755); err != nil {
			return nil, fmt.Errorf("multiexit: Start: cgroup for the children: %w", err)
		}
	}
	return e, nil
}

// release ends the entry's containment once nothing of it is alive (or
// its stop has swept what was): it forgets the PIDs of its children, and
// removes its cgroup.
func (e *entryContainment) release() {
	tree.mu.Lock()
	delete(tree.waiting, e)
	for pid := range e.kids {
		tree.started[pid] = slices.DeleteFunc(tree.started[pid], func(o *entryContainment) bool { return o == e })
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
	g, err := startGuardian(tree.root, tree.lock, tree.timeout, guardianEnv())
	if err != nil {
		return err
	}
	tree.guard = g
	tree.tracked[g.cmd.Process.Pid] = g.cmd // closeContainment waits for it
	return nil
}

// closeContainment runs at exit, after the hooks: the tree is empty, so
// the guardian only removes the cgroups; it is waited for, so that nothing
// of the tree outlives this process.
func closeContainment() {
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
// trees of this PID namespace, and locks it (see lockCgroup) for the life
// of this process and of its guardian, which inherits the lock: so no
// other program takes the tree for stale while the guardian waits for the
// workers of this process, SIGKILLed, to finish their hooks.
func makeTreeRoot() (*os.File, error) {
	cleanStaleCgroups(filepath.Dir(tree.root))
	if err := os.Mkdir(tree.root, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(tree.root, "cgroup.kill")); err != nil {
		os.Remove(tree.root)
		return nil, errors.New("cgroup.kill is not supported (Linux 5.14 or later needed)")
	}
	lock, err := lockCgroup(tree.root)
	if err != nil {
		os.Remove(tree.root)
		return nil, err
	}
	return lock, nil
}

// prepare tags cmd and, in the cgroup layer, starts it straight into the
// entry's cgroup (unless the caller chose a cgroup). It returns what to
// release once the command has started.
func (e *entryContainment) prepare(cmd *exec.Cmd) (release func(), err error) {
	if e.tag == "" {
		return func() {}, nil
	}
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = append(environWithout(env, treeVar), treeVar+"="+e.tag)
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

// forkTracked starts cmd for the entry and records its PID as one whose
// status exec.Cmd.Wait owns, before the reaper can look at it, and as one
// of the entry's children, with its start time: after the child is gone,
// orphans of its own tree still say which entry they belong to (ownerOf).
func (e *entryContainment) forkTracked(cmd *exec.Cmd) error {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	if err := startCmd(cmd); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	if tree.tracked != nil {
		tree.tracked[pid] = cmd
	}
	if e.kids != nil {
		// It is tracked: alive or an unreaped zombie, so this is its
		// start time.
		if born, ok := startTicks(pid); ok {
			if _, again := e.kids[pid]; !again {
				tree.started[pid] = append(tree.started[pid], e)
			}
			e.kids[pid] = born
		}
	}
	tree.guard.tell("+" + strconv.Itoa(cmd.Process.Pid))
	return nil
}

// untrack forgets cmd once it was waited for (not a later child that got
// its PID).
func untrack(cmd *exec.Cmd) {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	pid := cmd.Process.Pid
	if tree.tracked[pid] == cmd {
		delete(tree.tracked, pid)
	}
	tree.guard.tell("-" + strconv.Itoa(pid))
}

// termEscapees sends SIGTERM (and SIGCONT), as the entry's stop begins, to
// what its children left outside their process groups (groups): the
// descendants of its external children (externals) in other groups,
// processes directly in the entry's cgroup, but for those of workers (whose
// own children are theirs to stop), and orphans that belong to the entry
// (its tag's, and those of the trees of its children: see ownerOf). So
// everything of the entry shares one grace period; the sweep kills what is
// left at its end.
func (e *entryContainment) termEscapees(groups, externals, workers []int, log func(msg string, args ...any)) {
	if e.tag == "" || Containment() == LayerProcessGroup {
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
		return err != nil || groupSet[pgid] || workerSet[ppidOf(pid)]
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
	for _, pid := range adoptedWith(e.tag) {
		if !skip(pid) && !e.termed[pid] {
			e.termed[pid] = true
			signalAdopted(pid, unix.SIGTERM, unix.SIGCONT)
		}
	}
}

// sweep runs after the entry's children were stopped: whatever of the
// entry is left — descendants that left their process groups — gets
// SIGTERM now and SIGKILL at end, the end of the entry's one grace period
// (cgroup.kill in the cgroup layer), and is reaped. Orphans that appear
// while it runs (the children of a killed escapee) get SIGKILL at once
// once end has passed: nothing of the entry gets a second grace period.
func (e *entryContainment) sweep(end time.Time, log func(msg string, args ...any)) {
	if e.cg != "" {
		if reapOrphans() == 0 && unpopulated(e.cg) { // adopt the live ones first
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
	for {
		left := adoptedWith(e.tag)
		if len(left) == 0 {
			return
		}
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

// whenEmpty calls f once nothing of the entry is alive: now, or as the
// reaper sees its last descendant go.
func (e *entryContainment) whenEmpty(f func()) {
	if e.tag == "" || e.empty() {
		f()
		return
	}
	tree.mu.Lock()
	tree.waiting[e] = f
	tree.mu.Unlock()
	e.checkEmpty() // it may have emptied meanwhile
}

// checkEmpty calls the entry's whenEmpty function if it is empty now.
func (e *entryContainment) checkEmpty() {
	if !e.empty() {
		return
	}
	tree.mu.Lock()
	f, ok := tree.waiting[e]
	delete(tree.waiting, e)
	tree.mu.Unlock()
	if ok {
		f()
	}
}

// empty reports whether nothing of the entry is alive: no process in its
// cgroup, no orphan with its tag.
func (e *entryContainment) empty() bool {
	if e.cg != "" && populated(e.cg) {
		return false
	}
	return e.tag == "" || len(adoptedWith(e.tag)) == 0
}

// adoptedWith scans this process's children and returns the live ones
// that belong to the entry tagged tag (see ownerOf): orphans of that entry.
func adoptedWith(tag string) []int {
	reapOrphans()
	tree.mu.Lock()
	defer tree.mu.Unlock()
	var pids []int
	for pid, t := range tree.adopted {
		if t == tag {
			pids = append(pids, pid)
		}
	}
	return pids
}

// signalAdopted signals an adopted orphan and its descendants (see
// signalTree). It holds the lock the reaper needs, so the orphan — this
// process's child — cannot be reaped, and its PID reused, between the
// check and the signal.
func signalAdopted(pid int, sigs ...unix.Signal) {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	if _, ok := tree.adopted[pid]; !ok {
		return
	}
	signalTree(pid, 0, func(sig unix.Signal) { unix.Kill(pid, sig) }, sigs)
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
	for _, pid := range childrenOf(parent) {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue
		}
		if ppidOf(pid) != parent || unix.PidfdSendSignal(fd, 0, nil, 0) != nil {
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

// waitAnyGone waits until one of the adopted pids has exited (and reaps
// it), or until.
func waitAnyGone(pids []int, until time.Time) bool {
	for d := 100 * time.Microsecond; ; d = min(2*d, 20*time.Millisecond) {
		for _, pid := range pids {
			if reapPID(pid) {
				return true
			}
		}
		if time.Now().After(until) {
			return false
		}
		time.Sleep(min(d, max(time.Until(until), 0)+time.Millisecond))
	}
}

// reapPID reaps an adopted child if it has exited, and reports whether it
// is gone. Under tree.mu, and only while it is adopted: the reaper may have
// reaped it, and its PID may belong to another child of this process now.
func reapPID(pid int) bool {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	if _, ok := tree.adopted[pid]; !ok {
		return true
	}
	var ws unix.WaitStatus
	wpid, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	if err != nil || wpid == pid { // reaped, or not ours any more
		delete(tree.adopted, pid)
		return true
	}
	return false
}

// reaper reaps orphans as they die (a subreaper inherits them), and
// releases the entries that emptied.
func reaper() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGCHLD)
	for range ch {
		tree.mu.Lock()
		quiet := tree.quiet > 0
		tree.missed = tree.missed || quiet
		var waiting []*entryContainment
		for e := range tree.waiting {
			waiting = append(waiting, e)
		}
		tree.mu.Unlock()
		if quiet {
			continue
		}
		reapOrphans()
		for _, e := range waiting {
			e.checkEmpty()
		}
	}
}

// quiet keeps the reaper from scanning this process's children on every
// SIGCHLD while the entry's children are stopped in the shutdown: a stop
// of N children would scan N times. The returned function ends it, and
// reaps what the reaper skipped once no entry is being stopped. (Outside
// the shutdown the reaper keeps scanning: an orphan it did not see alive
// cannot be told from its zombie, whose environment is gone.)
func (e *entryContainment) quiet() (end func()) {
	tree.mu.Lock()
	tree.quiet++
	tree.mu.Unlock()
	return func() {
		tree.mu.Lock()
		tree.quiet--
		missed := tree.quiet == 0 && tree.missed
		if missed {
			tree.missed = false
		}
		tree.mu.Unlock()
		if missed {
			reapOrphans()
		}
	}
}

// reapOrphans adopts the live orphans that carry one of our tags and reaps
// the dead children that nobody else will wait for: orphans of the tree,
// and (where the kernel gives Go pidfds) every zombie child that no
// os.Process holds, such as the orphaned background jobs of the commands
// this process runs. It never takes a status that exec.Cmd.Wait owns:
// those children are tracked (Start's) or held by a pidfd of their
// os.Process until they are waited for. It reports how many children it
// found that are not Start's.
func reapOrphans() (untracked int) {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	tree.missed = false // this scan sees whatever a skipped SIGCHLD told
	var held map[int]bool
	for _, pid := range children() {
		if tree.tracked[pid] != nil {
			continue
		}
		untracked++
		state, ok := procState(pid)
		if !ok {
			continue
		}
		_, adopted := tree.adopted[pid]
		if state != 'Z' {
			if !adopted {
				if owner := ownerOf(envOf(pid, treeVar), pid); owner != "" {
					tree.adopted[pid] = owner
				}
			}
			continue
		}
		if held == nil && tree.owners {
			held = pidfdsHeld(-1)
		}
		switch {
		case held[pid]:
			// An os.Process will wait for it (its Env may carry one
			// of our tags, copied from a child's).
			delete(tree.adopted, pid)
		case adopted || inTree(pid, tree.root):
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			delete(tree.adopted, pid)
		case tree.owners:
			if held == nil {
				held = pidfdsHeld(-1)
			}
			if !held[pid] {
				reapUnowned(pid)
			}
		case tree.pid1 && !tree.lingering[pid]:
			// As PID 1 every zombie is ours to reap, but one may be a
			// child that code of this process is about to Wait for:
			// without pidfds to tell, reap it only if it is still a
			// zombie a second later.
			tree.lingering[pid] = true
			time.AfterFunc(time.Second, func() { reapLingering(pid) })
		}
	}
	return untracked
}

// ownerOf returns the tag of the entry that the live orphan pid, this
// process's child tagged tag, belongs to, or "" if it belongs to none.
// Called with tree.mu held.
//
// A tag of this process's (its prefix) names the entry. A tag "<P>.<n>"
// where P is a child that one of our entries started — a worker with
// entries of its own, which died without stopping them — belongs to that
// entry: the orphan is of a tree below it, and stops with it. P may be
// dead and reaped, its PID reused meanwhile by a child of another entry:
// the entry's record of P (kept until it is released) holds P's start
// time, and of the children recorded with PID P the orphan belongs to the
// latest started before it was (a descendant is started after its
// ancestor). Such an orphan may be a worker of that tree, stopping on its
// own since its parent died: it ignores the entry's SIGTERM (a repeated
// one), but its descendants get theirs with it, and all of it is killed
// at the end of the entry's grace period, the budget it had below the
// entry anyway. A tag that names none of our entries' children is another
// tree's (a program this process ran without Start, or one above it): such
// an orphan is left alone, as init would, and reaped when it dies.
func ownerOf(tag string, pid int) string {
	if strings.HasPrefix(tag, tree.prefix) {
		return tag
	}
	p, _, ok := strings.Cut(tag, ".")
	kid, err := strconv.Atoi(p)
	if !ok || err != nil || len(tree.started[kid]) == 0 {
		return ""
	}
	born, ok := startTicks(pid)
	if !ok {
		return ""
	}
	var owner *entryContainment
	for _, e := range tree.started[kid] {
		if t := e.kids[kid]; t <= born && (owner == nil || t >= owner.kids[kid]) {
			owner = e
		}
	}
	if owner == nil {
		return ""
	}
	return owner.tag
}

// reapUnowned reaps the zombie pid, which no pidfd of this process held
// when it was seen: through a pidfd of its own, opened first and checked
// again, so that if an os.Process waited for it meanwhile and its PID was
// reused, nothing else is reaped.
func reapUnowned(pid int) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if pidfdsHeld(fd)[pid] {
		return
	}
	var info unix.Siginfo
	unix.Waitid(unix.P_PIDFD, fd, &info, unix.WEXITED|unix.WNOHANG, nil)
}

// pidfdsHeld lists the processes that the pidfds open in this process,
// but for the descriptor except, refer to.
func pidfdsHeld(except int) map[int]bool {
	held := map[int]bool{}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if e.Name() == strconv.Itoa(except) {
			continue
		}
		l, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || l != "anon_inode:[pidfd]" {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, "Pid:"); ok {
				if pid, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
					held[pid] = true
				}
			}
		}
	}
	return held
}

func reapLingering(pid int) {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	delete(tree.lingering, pid)
	if state, ok := procState(pid); ok && state == 'Z' && tree.tracked[pid] == nil {
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
}

// children lists this process's children (of every thread).
func children() []int { return childrenOf(os.Getpid()) }

// childrenOf lists pid's children (of every thread).
func childrenOf(pid int) []int {
	var pids []int
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, _ := os.ReadDir(dir)
	for _, t := range tasks {
		for _, f := range strings.Fields(string(readProc(dir + "/" + t.Name() + "/children"))) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

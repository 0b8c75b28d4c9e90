package multiexit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// treeVar tags every child that Start starts, and so every descendant that
// keeps its environment, with "<parent pid>.<entry>": an orphan that
// reparents to this process (a subreaper) says which entry it belongs to.
const treeVar = "MULTIEXIT_TREE"

var tree struct {
	mu      sync.Mutex // held across a fork and its tracking, and by the reaper
	layer   Layer
	root    string // the tree's cgroup (LayerCgroup), made at the first Start
	made    bool
	seq     int
	prefix  string         // "<pid>.": the tags of this process's entries
	tracked map[int]bool   // children whose status exec.Cmd.Wait owns
	adopted map[int]string // orphans seen alive with one of our tags
	pid1    bool
	// lingering: zombies, as PID 1, that no one has claimed yet
	lingering map[int]bool
	// quiet counts the entries being stopped in the shutdown: their
	// children's exits are theirs to reap, and the sweep that ends each
	// stop reaps orphans, so the reaper does not scan on every SIGCHLD
	// meanwhile. missed says it skipped one.
	quiet  int
	missed bool

	guardian     *os.File // write end; the guardian acts when it closes
	guardianProc *exec.Cmd
}

// initContainment chooses the layer: cgroup v2 where a writable hierarchy
// exists, else the subreaper, else process groups. It also starts the
// reaper of orphans.
func initContainment(cfg config) Layer {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	tree.tracked = map[int]bool{}
	tree.adopted = map[int]string{}
	tree.lingering = map[int]bool{}
	tree.prefix = strconv.Itoa(os.Getpid()) + "."
	tree.pid1 = os.Getpid() == 1
	tree.layer = LayerProcessGroup
	limit := os.Getenv(ContainmentVar)
	switch limit {
	case "", LayerProcessGroup.String(), LayerSubreaper.String(), LayerCgroup.String():
	default:
		cfg.log.Warn("multiexit: unknown containment layer; ignored", "var", ContainmentVar, "value", limit,
			"known", LayerCgroup.String()+", "+LayerSubreaper.String()+", "+LayerProcessGroup.String())
	}
	if limit == LayerProcessGroup.String() {
		return tree.layer
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		cfg.log.Warn("multiexit: cannot become a child subreaper; containment is by process group only", "err", err)
		return tree.layer
	}
	tree.layer = LayerSubreaper
	root, err := "", errors.New(ContainmentVar+"=subreaper")
	if limit != LayerSubreaper.String() {
		// A probe that changes nothing: the tree's cgroup is made at
		// the first Start, so a process that never starts children
		// (most workers) makes and removes none.
		root, err = treeCgroupPath()
	}
	if err == nil {
		tree.root, tree.layer = root, LayerCgroup
	}
	go reaper()
	if cfg.trace {
		cfg.log.Info("multiexit: containment", "layer", tree.layer.String(), "cgroup", tree.root, "cgroup_unavailable", errString(err))
	}
	return tree.layer
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// entryContainment is one Start entry's share of the tree.
type entryContainment struct {
	tag string // MULTIEXIT_TREE value of its children
	cg  string // its cgroup (LayerCgroup)
}

func newEntryContainment() (*entryContainment, error) {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	if tree.prefix == "" { // Install was not called: process groups only
		return &entryContainment{}, nil
	}
	tree.seq++
	e := &entryContainment{tag: tree.prefix + strconv.Itoa(tree.seq)}
	if tree.layer == LayerCgroup {
		if !tree.made {
			if err := makeTreeRoot(); err != nil {
				// The probe at Install said yes, the kernel says no: fall
				// back to the subreaper layer rather than fail Start.
				rt.logger().Warn("multiexit: cannot make the tree's cgroup; containment falls back to the subreaper layer", "err", err)
				tree.layer, tree.root = LayerSubreaper, ""
				rt.mu.Lock()
				rt.layer = LayerSubreaper
				rt.mu.Unlock()
				return e, nil
			}
			tree.made = true
		}
		e.cg = filepath.Join(tree.root, "e"+strconv.Itoa(tree.seq))
		if err := os.Mkdir(e.cg, 0o755); err != nil {
			return nil, fmt.Errorf("multiexit: Start: cgroup for the children: %w", err)
		}
		if err := ensureGuardian(); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// makeTreeRoot makes the tree's cgroup, after removing those left by dead
// trees of this PID namespace.
func makeTreeRoot() error {
	cleanStaleCgroups(filepath.Dir(tree.root))
	if err := os.Mkdir(tree.root, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if _, err := os.Stat(filepath.Join(tree.root, "cgroup.kill")); err != nil {
		os.Remove(tree.root)
		return errors.New("cgroup.kill is not supported (Linux 5.14 or later needed)")
	}
	return nil
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

// forkTracked starts cmd and records its PID as one whose status
// exec.Cmd.Wait owns, before the reaper can look at it.
func forkTracked(cmd *exec.Cmd) error {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	if err := startCmd(cmd); err != nil {
		return err
	}
	if tree.tracked != nil {
		tree.tracked[cmd.Process.Pid] = true
	}
	tellGuardian("+" + strconv.Itoa(cmd.Process.Pid))
	return nil
}

func untrack(pid int) {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	delete(tree.tracked, pid)
	tellGuardian("-" + strconv.Itoa(pid))
}

// sweep runs after the entry's children were stopped: whatever of the
// entry is left — descendants that left their process groups — gets
// SIGTERM, up to grace, then SIGKILL (cgroup.kill in the cgroup layer), and
// is reaped. It reports how many it found.
func (e *entryContainment) sweep(grace time.Duration, log func(msg string, args ...any)) {
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
				signalInCgroup(pid, e.cg, unix.SIGTERM, unix.SIGCONT)
			}
			if !waitEmpty(e.cg, grace) {
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
	// Orphans that reparented to this process with the entry's tag: in
	// the cgroup layer, only those that moved themselves out of it.
	for range 8 { // each round may orphan the next generation
		left := adoptedWith(e.tag)
		if len(left) == 0 {
			return
		}
		if e.cg != "" {
			log("multiexit: descendants left the entry's cgroup; stopping them by PID", "cgroup", e.cg, "pids", left)
		}
		for _, pid := range left {
			signalAdopted(pid, unix.SIGTERM, unix.SIGCONT)
		}
		end := time.Now().Add(grace)
		for _, pid := range left {
			if !waitPID(pid, time.Until(end)) {
				log("multiexit: orphaned descendant did not stop within the grace period; killing it", "pid", pid)
				signalAdopted(pid, unix.SIGKILL)
				waitPID(pid, 5*time.Second)
			}
		}
	}
}

// adoptedWith scans this process's children and returns the live ones
// tagged tag: orphans of that entry.
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

// signalAdopted signals an adopted orphan. It holds the lock the reaper
// needs, so the orphan — this process's child — cannot be reaped, and its
// PID reused, between the check and the signal.
func signalAdopted(pid int, sigs ...unix.Signal) {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	if _, ok := tree.adopted[pid]; !ok {
		return
	}
	for _, sig := range sigs {
		unix.Kill(pid, sig)
	}
}

// waitPID waits up to d for an adopted child to exit and reaps it.
func waitPID(pid int, d time.Duration) bool {
	end := time.Now().Add(d)
	for s := 100 * time.Microsecond; ; s = min(2*s, 20*time.Millisecond) {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if err != nil || wpid == pid { // reaped, or not ours any more
			tree.mu.Lock()
			delete(tree.adopted, pid)
			tree.mu.Unlock()
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(s)
	}
}

// reaper reaps orphans as they die: a subreaper inherits them.
func reaper() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGCHLD)
	for range ch {
		tree.mu.Lock()
		quiet := tree.quiet > 0
		tree.missed = tree.missed || quiet
		tree.mu.Unlock()
		if !quiet {
			reapOrphans()
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
// the dead ones, by explicit PID. It never touches a child whose status
// exec.Cmd.Wait owns, nor (unless this process is PID 1) a child it cannot
// tell is an orphan of the tree. It reports how many children it found
// that are not exec.Cmd.Wait's.
func reapOrphans() (untracked int) {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	tree.missed = false // this scan sees whatever a skipped SIGCHLD told
	for _, pid := range children() {
		if tree.tracked[pid] {
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
				if tag := envOf(pid, treeVar); strings.HasPrefix(tag, tree.prefix) {
					tree.adopted[pid] = tag
				}
			}
			continue
		}
		switch {
		case adopted || inTree(pid):
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			delete(tree.adopted, pid)
		case tree.pid1 && !tree.lingering[pid]:
			// As PID 1 every zombie is ours to reap, but one may be a
			// child that code of this process is about to Wait for:
			// reap it only if it is still a zombie a second later.
			tree.lingering[pid] = true
			time.AfterFunc(time.Second, func() { reapLingering(pid) })
		}
	}
	return untracked
}

func reapLingering(pid int) {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	delete(tree.lingering, pid)
	if state, ok := procState(pid); ok && state == 'Z' && !tree.tracked[pid] {
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
}

// children lists this process's children (of every thread).
func children() []int {
	var pids []int
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func procState(pid int) (byte, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, false
	}
	return b[i+2], true
}

func envOf(pid int, name string) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return ""
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(name+"=")); ok {
			return string(v)
		}
	}
	return ""
}

// init: a worker's ends of the control channel must not leak into what it
// runs before Install; they are close-on-exec from the start.
func init() {
	if r, err := decodeRegistry(childEnv); childEnvSet && err == nil {
		unix.CloseOnExec(int(r.ctl[0]))
		unix.CloseOnExec(int(r.ctl[1]))
	}
}

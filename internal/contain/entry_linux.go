package contain

// An entry's life: its children tagged and started into its cgroup, tracked
// while exec.Cmd.Wait owns them, and the entry released once nothing of it
// is alive.

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/multiexit/multiexit/internal/procfs"
	"golang.org/x/sys/unix"
)

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
	// KeepGroup), under tree.mu
	kept []int
}

// NewEntry makes the containment of a new Start entry: on the cgroup
// layer its cgroup, the tree's (and the guardian) at the first call. What
// it cannot make falls back to the subreaper layer, with a warning to log;
// the error is a cgroup that could not be made for an entry.
func NewEntry(log *slog.Logger) (*Entry, error) {
	resolveProbe()
	tree.mu.Lock()
	defer tree.mu.Unlock()
	if tree.prefix == "" { // Install was not called: process groups only
		return &Entry{}, nil
	}
	tree.seq++
	e := &Entry{tag: tree.prefix + strconv.Itoa(tree.seq), termed: map[int]bool{}, kids: map[int]uint64{}}
	if Current() == Cgroup && prepareTree(log) {
		e.cg = filepath.Join(tree.root, "e"+strconv.Itoa(tree.seq))
		if err := os.Mkdir(e.cg, 0o755); err != nil {
			return nil, fmt.Errorf("multiexit: Start: cgroup for the children: %w", err)
		}
	}
	return e, nil
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

// Quiet keeps the reaper from scanning this process's children on every
// SIGCHLD while the entry's children are stopped in the shutdown: a stop
// of N children would scan N times. The returned function ends it, and
// reaps what the reaper skipped once no entry is being stopped. (Outside
// the shutdown the reaper keeps scanning: an orphan it did not see alive
// cannot be told from its zombie, whose environment is gone.)
func (e *Entry) Quiet() (end func()) {
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

// WhenEmpty calls f once nothing of the entry is alive: now, or as the
// reaper sees its last descendant go.
func (e *Entry) WhenEmpty(f func()) {
	if e.tag == "" && !e.keptAlive() {
		f()
		return
	}
	tree.mu.Lock()
	if tree.waiting == nil { // Install was not called
		tree.waiting = map[*Entry]func(){}
	}
	tree.waiting[e] = f
	tree.mu.Unlock()
	var s scan
	if e.tag != "" {
		s = settledScan()
	}
	e.checkEmpty(s) // it may be empty already
}

// checkEmpty calls the entry's WhenEmpty function if it is empty after
// the scan s.
func (e *Entry) checkEmpty(s scan) {
	if !e.emptyAfter(s) {
		return
	}
	if e.tag != "" && !e.emptyAfter(settledScan()) {
		// A second look before the entry is let go: one listing of
		// this process's children is not trusted alone.
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

// emptyAfter reports whether nothing of the entry is alive after the scan
// s: nothing its children left in their groups (see KeepGroup), no process
// in its cgroup, no orphan with its tag, and no child of this process
// pending (whose orphans could be the entry's).
func (e *Entry) emptyAfter(s scan) bool {
	if e.keptAlive() || e.cg != "" && populated(e.cg) {
		return false
	}
	return e.tag == "" || (s.pending == 0 && len(s.owned[e.tag]) == 0)
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

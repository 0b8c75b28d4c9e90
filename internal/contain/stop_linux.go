package contain

// An entry's stop: what its children left outside their process groups
// (escapees) gets SIGTERM with them, and the sweep kills what is left at
// the end of the grace period.

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/multiexit/multiexit/internal/procfs"
	"golang.org/x/sys/unix"
)

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

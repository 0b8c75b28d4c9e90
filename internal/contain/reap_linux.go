package contain

// The reaper: the children of this process that no exec.Cmd owns (orphans
// of the tree, which reparent to it as a subreaper, and zombies nobody will
// wait for), how each is judged once (see ownerOf), and the scans from
// which an entry learns that it is empty (see WhenEmpty).
//
// What a descendant can make it cost, whatever it does (see
// docs/containment.md, "Security"): each scan reads one /proc/PID/stat per child; the
// environment of a child is read once per process (PID and start time),
// at most procfs.EnvScanLimit bytes of it; and the reaper spends at most
// about a tenth of its time scanning, however many SIGCHLDs arrive.
// tree.mu, which Start needs, is never held across a read of /proc.

import (
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/multiexit/multiexit/internal/procfs"
	"golang.org/x/sys/unix"
)

// orphans serialises what reaps or signals by PID the children of this
// process that no exec.Cmd owns: one holder at a time, so that such a
// child, seen alive or a zombie, keeps its PID until the holder is done
// with it (nothing else reaps it). It is held across reads of /proc. Lock
// order: orphans.mu, then tree.mu.
var orphans struct {
	mu sync.Mutex
	// tags: what the environment of each live untracked child said (the
	// tree's tag, or ""), read once per process: by PID, with the
	// process's start time. A process that changes its environment later,
	// or executes another program, keeps the verdict of its first look.
	tags map[int]seenTag
}

type seenTag struct {
	start uint64
	tag   string
}

// scan is what one scan of this process's children found.
type scan struct {
	untracked int // children that are not Start's
	// pending: children on their way out (exiting, or zombies this scan
	// reaped), or that could not be judged: their orphans, if any,
	// reparented to this process after the scan listed its children, so a
	// scan that found nothing of an entry says so only when none is
	// pending.
	pending int
	reaped  int // of which zombies this scan reaped
	// owned: the live orphans this scan found adopted, by the tag of
	// the entry they belong to (see ownerOf). Read from the scan itself,
	// not from the adopted set later: another goroutine's scan may reap
	// one of them in between, before it adopts its successor (a
	// descendant that forks and exits), and the entry would look empty.
	owned map[string][]int
}

// settledScan scans until a scan reaps nothing (at most eight times): the
// orphans of what the earlier scans reaped are then listed. No SIGCHLD
// would say that they are there.
func settledScan() scan {
	s := reapOrphans()
	for range 7 {
		if s.reaped == 0 {
			break
		}
		s = reapOrphans()
	}
	return s
}

// reapOrphans scans this process's children: it adopts the live orphans
// that carry one of our tags and reaps the dead children that nobody else
// will wait for: orphans of the tree, and (where the kernel gives Go
// pidfds) every zombie child that no os.Process holds, such as the
// orphaned background jobs of the commands this process runs. It never
// takes a status that exec.Cmd.Wait owns: those children are tracked
// (Start's) or held by a pidfd of their os.Process until they are waited
// for.
func reapOrphans() scan {
	orphans.mu.Lock()
	defer orphans.mu.Unlock()
	tree.mu.Lock()
	tree.missed = false // this scan sees whatever a skipped SIGCHLD told
	root, owners, pid1 := tree.root, tree.owners, tree.pid1
	tree.mu.Unlock()
	var s scan
	var held map[int]bool
	live := map[int]bool{}
	for _, pid := range children() {
		if tracked(pid) {
			continue
		}
		s.untracked++
		st, ok := procfs.StatusOf(pid)
		if !ok {
			continue // gone
		}
		if st.State != 'Z' {
			live[pid] = true
			if st.Exiting() {
				s.pending++
				continue
			}
			tag, ok := tagOf(pid, st.Start)
			if !ok {
				s.pending++
				continue
			}
			if tag != "" {
				if owner := adopt(pid, tag, st.Start); owner != "" {
					if s.owned == nil {
						s.owned = map[string][]int{}
					}
					s.owned[owner] = append(s.owned[owner], pid)
				}
			}
			continue
		}
		if held == nil && owners {
			held = pidfdsHeld(-1)
		}
		switch {
		case held[pid]:
			// An os.Process will wait for it (its Env may carry one
			// of our tags, copied from a child's).
			forget(pid)
		case adopted(pid) || inTree(pid, root):
			if reapZombie(pid) {
				s.pending++
				s.reaped++
			}
		case owners:
			if reapUnowned(pid) {
				s.pending++
				s.reaped++
			}
		case pid1:
			lingerThenReap(pid)
		}
	}
	for pid := range orphans.tags {
		if !live[pid] {
			delete(orphans.tags, pid)
		}
	}
	return s
}

// tagOf is the tree's tag in the environment of pid, a live child of this
// process started at start ("" for none): remembered, or read (a bounded
// prefix: see procfs.Env) from a process pinned by a pidfd, so that what is
// read is that process's. false: it exited or began to meanwhile.
func tagOf(pid int, start uint64) (string, bool) {
	if s, ok := orphans.tags[pid]; ok && s.start == start {
		return s.tag, true
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return "", false
	}
	defer unix.Close(fd)
	st, ok := procfs.StatusOf(pid)
	if !ok || st.Start != start || st.Exiting() {
		return "", false
	}
	tag, err := procfs.Env(pid, treeVar)
	switch {
	case err == unix.EACCES || err == unix.EPERM:
		// Another user's, to a parent that is not root: its
		// environment cannot tell.
		tag = ""
	case err != nil:
		return "", false
	}
	if unix.PidfdSendSignal(fd, 0, nil, 0) != nil {
		return "", false
	}
	if tag == "" {
		// An exiting process shows an empty environment.
		if st, ok := procfs.StatusOf(pid); !ok || st.Exiting() {
			return "", false
		}
	}
	if orphans.tags == nil {
		orphans.tags = map[int]seenTag{}
	}
	orphans.tags[pid] = seenTag{start, tag}
	return tag, true
}

// tracked reports whether pid is a child that exec.Cmd.Wait owns.
func tracked(pid int) bool {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	return tree.tracked[pid] != nil
}

// adopted reports whether pid is an adopted orphan.
func adopted(pid int) bool {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	_, ok := tree.adopted[pid]
	return ok
}

// forget drops pid from the adopted orphans.
func forget(pid int) {
	tree.mu.Lock()
	delete(tree.adopted, pid)
	tree.mu.Unlock()
}

// adopt records the live orphan pid, started at born and tagged tag, as
// the entry's it belongs to (see ownerOf), if any, and returns that
// entry's tag ("" for none). Under orphans.mu: pid cannot be reaped
// meanwhile.
func adopt(pid int, tag string, born uint64) string {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	if tree.tracked[pid] != nil {
		return ""
	}
	if owner, ok := tree.adopted[pid]; ok {
		return owner
	}
	owner := ownerOf(tag, born)
	if owner != "" {
		tree.adopted[pid] = owner
	}
	return owner
}

// reapZombie reaps the zombie child pid, which nobody else will wait for
// (an adopted orphan, or one of the tree cgroup's), unless a Start entry
// tracks it: through a pidfd, so that nothing else is ever reaped. Under
// orphans.mu. It reports whether it reaped it.
func reapZombie(pid int) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		forget(pid)
		return false
	}
	defer unix.Close(fd)
	return reapPinned(fd, pid)
}

// reapPinned reaps the process that fd pins, pid, if it is an exited child
// of this process that no Start entry tracks, and reports whether it did.
// tracked is checked under tree.mu, which Start holds from a child's fork
// until it is tracked.
func reapPinned(fd, pid int) bool {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	if tree.tracked[pid] != nil {
		return false
	}
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PIDFD, fd, &info, unix.WEXITED|unix.WNOHANG, nil)
	if err != nil || info.Signo != 0 { // reaped, or not a child any more
		delete(tree.adopted, pid)
	}
	return err == nil && info.Signo != 0
}

// reapUnowned reaps the zombie pid, which no pidfd of this process held
// when it was seen: through a pidfd of its own, opened first and checked
// again, so that if an os.Process waited for it meanwhile and its PID was
// reused, nothing else is reaped. It reports whether it reaped it.
func reapUnowned(pid int) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	if pidfdsHeld(fd)[pid] {
		return false
	}
	return reapPinned(fd, pid)
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

// lingerThenReap: as PID 1 every zombie is ours to reap, but one may be a
// child that code of this process is about to Wait for: without pidfds to
// tell, reap it only if it is still a zombie a second later.
func lingerThenReap(pid int) {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	if tree.lingering[pid] {
		return
	}
	tree.lingering[pid] = true
	time.AfterFunc(time.Second, func() { reapLingering(pid) })
}

func reapLingering(pid int) {
	orphans.mu.Lock()
	defer orphans.mu.Unlock()
	st, ok := procfs.StatusOf(pid)
	tree.mu.Lock()
	defer tree.mu.Unlock()
	delete(tree.lingering, pid)
	if ok && st.State == 'Z' && tree.tracked[pid] == nil {
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
}

// adoptedWith scans this process's children and returns the live ones
// that belong to the entry tagged tag (see ownerOf): orphans of that entry;
// and the scan.
func adoptedWith(tag string) ([]int, scan) {
	s := reapOrphans()
	return s.owned[tag], s
}

// signalAdopted signals an adopted orphan and its descendants (see
// signalTree). It holds orphans.mu, which reaping needs, so the orphan —
// this process's child — cannot be reaped, and its PID reused, between the
// check and the signal.
func signalAdopted(pid int, sigs ...unix.Signal) {
	orphans.mu.Lock()
	defer orphans.mu.Unlock()
	if !adopted(pid) {
		return
	}
	signalTree(pid, 0, func(sig unix.Signal) { unix.Kill(pid, sig) }, sigs)
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
// is gone. Under orphans.mu, and only while it is adopted: a scan may have
// reaped it, and its PID may belong to another child of this process now.
func reapPID(pid int) bool {
	orphans.mu.Lock()
	defer orphans.mu.Unlock()
	if !adopted(pid) {
		return true
	}
	var ws unix.WaitStatus
	wpid, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	if err != nil || wpid == pid { // reaped, or not ours any more
		forget(pid)
		return true
	}
	return false
}

// reaper reaps orphans as they die (a subreaper inherits them), and
// releases the entries that emptied. After a scan it rests nine times as
// long as the scan took (at most 100 ms): a storm of SIGCHLDs costs it at
// most about a tenth of a CPU, and a zombie waits that much longer.
func reaper() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGCHLD)
	for range ch {
		tree.mu.Lock()
		quiet := tree.quiet > 0
		tree.missed = tree.missed || quiet
		var waiting []*Entry
		for e := range tree.waiting {
			waiting = append(waiting, e)
		}
		tree.mu.Unlock()
		if quiet {
			continue
		}
		t0 := time.Now()
		s := settledScan()
		for _, e := range waiting {
			e.checkEmpty(s)
		}
		if d := time.Since(t0); d > time.Millisecond {
			time.Sleep(min(9*d, 100*time.Millisecond))
		}
	}
}

// children lists this process's children (of every thread).
func children() []int { return procfs.Children(os.Getpid()) }

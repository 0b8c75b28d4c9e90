package contain

// The process-group layer's leftovers: what a child left in its process
// group when it exited by itself, before its entry was stopped. Its group
// ID can be reused once it is reaped, so the group's members are pinned
// (pidfds) while it is still an unreaped zombie, and the entry stops them
// with the rest: SIGTERM as its stop begins, SIGKILL at the end of its
// grace period. Until then they keep the entry on the stack (see
// emptyAfter). On the cgroup and subreaper layers they are the entry's
// anyway (its cgroup; orphans that reparent to this process).

import (
	"os"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// KeepGroup pins the members of process group pgid, led by a child of the
// entry that has exited and is not reaped yet (so pgid is still its), on
// the process-group layer. Called by the child's reaper.
func (e *Entry) KeepGroup(pgid int) {
	if Current() != ProcessGroup {
		return
	}
	var fds []int
	// getpgid, one system call a process, where reading /proc/PID/stat
	// took three and had the kernel format its fifty fields: this scan of
	// every process ran after each exit of COMMAND (the CLI on this
	// layer), and took a sixth of its run.
	for _, pid := range allPIDs() {
		if pid == pgid {
			continue
		}
		if g, err := unix.Getpgid(pid); err != nil || g != pgid {
			continue
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue
		}
		if g, err := unix.Getpgid(pid); err != nil || g != pgid { // pinned: still that process
			unix.Close(fd)
			continue
		}
		fds = append(fds, fd)
	}
	if len(fds) == 0 {
		return
	}
	tree.mu.Lock()
	e.kept = append(e.kept, fds...)
	tree.mu.Unlock()
	go e.watchKept(fds)
}

// watchKept waits for the processes of fds, which it owns, to exit,
// closes each pidfd as its process does, and checks whether the entry has
// emptied when the last has.
func (e *Entry) watchKept(fds []int) {
	for len(fds) > 0 {
		gone := exitedOf(fds)
		tree.mu.Lock()
		for _, fd := range gone {
			e.kept = slices.DeleteFunc(e.kept, func(k int) bool { return k == fd })
			unix.Close(fd)
		}
		tree.mu.Unlock()
		fds = slices.DeleteFunc(fds, func(fd int) bool { return slices.Contains(gone, fd) })
	}
	e.checkEmpty(scan{})
}

// exitedOf waits until at least one of the processes of fds (pidfds) has
// exited and returns their pidfds.
func exitedOf(fds []int) []int {
	pfds := make([]unix.PollFd, len(fds))
	for i, fd := range fds {
		pfds[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	}
	for {
		n, err := unix.Poll(pfds, -1)
		if err == unix.EINTR || n == 0 {
			continue
		}
		var gone []int
		for _, p := range pfds {
			if p.Revents != 0 || err != nil {
				gone = append(gone, int(p.Fd))
			}
		}
		return gone
	}
}

// signalKept signals the kept processes still running.
func (e *Entry) signalKept(sigs ...unix.Signal) {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	for _, fd := range e.kept {
		for _, sig := range sigs {
			unix.PidfdSendSignal(fd, sig, nil, 0)
		}
	}
}

// keptAlive reports whether a kept process still runs.
func (e *Entry) keptAlive() bool {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	return len(e.kept) > 0
}

// stopKept ends the kept processes: those still running at end (the end
// of the entry's grace period) get SIGKILL, and it waits (at most 5 s
// more) until they are gone.
func (e *Entry) stopKept(end time.Time) {
	waitKept := func(until time.Time) {
		for d := 100 * time.Microsecond; e.keptAlive() && time.Now().Before(until); d = min(2*d, 20*time.Millisecond) {
			time.Sleep(min(d, time.Until(until)))
		}
	}
	waitKept(end)
	if e.keptAlive() {
		e.signalKept(unix.SIGKILL)
		waitKept(time.Now().Add(5 * time.Second))
	}
}

// allPIDs lists the processes of this PID namespace, from /proc, unsorted.
func allPIDs() []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	pids := make([]int, 0, len(names))
	for _, name := range names {
		if pid, err := strconv.Atoi(name); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

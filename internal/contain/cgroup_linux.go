package contain

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/multiexit/multiexit/internal/procfs"
	"golang.org/x/sys/unix"
)

// The cgroup v2 plumbing of the cgroup layer.

// cgroupMount finds a cgroup v2 hierarchy: pure (/sys/fs/cgroup) or the
// unified half of a hybrid setup.
func cgroupMount() (string, error) {
	for _, p := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(p, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return p, nil
		}
	}
	return "", errors.New("no cgroup v2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified")
}

// ownCgroup is this process's cgroup v2 path, from /proc/self/cgroup.
func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return rest, nil
		}
	}
	return "", errors.New("/proc/self/cgroup has no cgroup v2 line")
}

// treeCgroupPath names the tree's cgroup, multiexit.<pid namespace>.<pid>.
// <start time> in this process's cgroup (PIDs and start times mean
// something only in their PID namespace, and cgroups are shared across
// namespaces: a directory is judged only by a process of the namespace
// that made it), and checks, changing nothing,
// that it can be made there: Install runs in every worker, and a mkdir and
// rmdir of a cgroup (under the kernel's global cgroup mutex) in each of
// them costs more than the rest of its start.
func treeCgroupPath() (string, error) {
	mnt, err := cgroupMount()
	if err != nil {
		return "", err
	}
	own, err := ownCgroup()
	if err != nil {
		return "", err
	}
	parent := filepath.Join(mnt, own)
	if err := unix.Access(parent, unix.W_OK); err != nil {
		return "", fmt.Errorf("cgroup v2 at %s is not writable: %w", parent, err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "cgroup.controllers")); err != nil {
		return "", err
	}
	return filepath.Join(parent, fmt.Sprintf("multiexit.%s.%d.%s", pidNamespace(), os.Getpid(), procfs.StartTime(os.Getpid()))), nil
}

// pidNamespace is the inode of this process's PID namespace.
func pidNamespace() string {
	l, err := os.Readlink("/proc/self/ns/pid") // pid:[4026531836]
	if err != nil {
		return "0"
	}
	return strings.TrimSuffix(strings.TrimPrefix(l, "pid:["), "]")
}

// cleanStaleCgroups kills and removes the stale trees in parent: those of
// processes of this PID namespace that are gone, and whose guardians are
// gone too, and those of other PID namespaces (a container's multiexit,
// SIGKILLed as its PID 1, took its namespace and its guardian with it)
// that nobody holds. A tree whose lock (see lockCgroup) is held is
// skipped: its owner lives, or its guardian is still giving the workers of
// a SIGKILLed owner their deadline (or another Start is cleaning it up).
func cleanStaleCgroups(parent string) {
	ns := pidNamespace()
	dirs, _ := filepath.Glob(filepath.Join(parent, "multiexit.*.*.*"))
	for _, d := range dirs {
		f := strings.SplitN(filepath.Base(d), ".", 4)
		if len(f) != 4 {
			continue
		}
		if f[1] == ns {
			pid, err := strconv.Atoi(f[2])
			if err != nil || pid == os.Getpid() || procfs.StartTime(pid) == f[3] {
				continue // its owner is alive (or it is ours)
			}
		}
		// Of another PID namespace, its owner's PID means nothing here:
		// only the lock tells (its owner takes it right after making the
		// directory, and checks that it still has it: see makeTreeRoot).
		lock, err := lockCgroup(d)
		if err != nil {
			continue // its owner or guardian lives (or it is gone already)
		}
		killCgroup(d, time.Second)
		lock.Close()
	}
}

// lockCgroup opens the tree cgroup dir and takes an exclusive flock(2) on
// it, without waiting: it fails (EWOULDBLOCK) if the lock is held. The
// lock marks a tree that is not stale. It belongs to the open file
// description, not to a process: the tree's owner takes it when it makes
// the cgroup and its guardian inherits the descriptor, so the lock is held
// while either lives, with no gap between them, and is released when the
// last of them has closed it (or died). Only the tree's owner (its user)
// can take it: the directory is made mode 0711 (see makeTreeRoot), and a
// directory opened without read permission (O_PATH) takes no flock.
func lockCgroup(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY, 0) // and O_CLOEXEC
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
}

// sameFile reports whether f is still the file at path.
func sameFile(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// killCgroup kills everything in dir and below, waits (up to wait) for it to
// empty, and removes the directories. It reports what it could not remove.
func killCgroup(dir string, wait time.Duration) error {
	os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	waitEmpty(dir, wait)
	return removeCgroup(dir)
}

func removeCgroup(dir string) error {
	subs, _ := os.ReadDir(dir)
	for _, s := range subs {
		if s.IsDir() {
			removeCgroup(filepath.Join(dir, s.Name()))
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// populated reads cgroup.events: whether any process is in dir or below.
func populated(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return false
	}
	return bytes.Contains(b, []byte("populated 1"))
}

// unpopulated reports whether cgroup.events could be read and says that
// no process is in dir or below.
func unpopulated(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	return err == nil && bytes.Contains(b, []byte("populated 0"))
}

// waitEmpty polls cgroup.events until dir is empty or wait passes.
func waitEmpty(dir string, wait time.Duration) bool {
	end := time.Now().Add(wait)
	for d := 100 * time.Microsecond; ; d = min(2*d, 20*time.Millisecond) {
		if !populated(dir) {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(d)
	}
}

// cgroupProcs lists the processes in dir and below.
func cgroupProcs(dir string) []int {
	var pids []int
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// signalInCgroup signals pid only if it is still the process in cg: it
// opens a pidfd first, then checks the cgroup, then signals through the
// pidfd, so a PID reused meanwhile by a process outside the tree is never
// hit.
func signalInCgroup(pid int, cg string, sigs ...unix.Signal) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if !inCgroup(pid, cg) {
		return
	}
	for _, sig := range sigs {
		unix.PidfdSendSignal(fd, sig, nil, 0)
	}
}

// inCgroup reports whether pid is in cg or below.
func inCgroup(pid int, cg string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return false
	}
	mnt, _ := cgroupMount()
	want := strings.TrimPrefix(cg, mnt)
	for _, line := range strings.Split(string(b), "\n") {
		if rel, ok := strings.CutPrefix(line, "0::"); ok {
			return rel == want || strings.HasPrefix(rel, want+"/")
		}
	}
	return false
}

// inTree reports whether pid is in the tree cgroup root, one of this
// process's cgroup's children ("" for none).
func inTree(pid int, root string) bool {
	if root == "" {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return false
	}
	own, _ := ownCgroup()
	rel := filepath.Join(own, filepath.Base(root))
	return bytes.Contains(b, []byte("0::"+rel+"/"))
}

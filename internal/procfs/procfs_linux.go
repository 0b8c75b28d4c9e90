package procfs

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// read reads a file of /proc with three system calls (os.ReadFile
// makes about eight: it tries the poller, and stats the file for its
// size, which /proc does not give). A stop reads one such file per process
// and per thread of this process (see Children), so the difference adds
// up. nil if it cannot be read.
func read(path string) []byte {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	b := make([]byte, 0, 512)
	for {
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil
		}
		if n == 0 {
			return b
		}
		b = b[:len(b)+n]
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// StatFields are the fields of /proc/PID/stat after the command name (the
// state first), or nil if it cannot be read.
func StatFields(pid int) []string {
	b := read("/proc/" + strconv.Itoa(pid) + "/stat")
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// State is pid's state letter ('Z' for a zombie); false if pid's stat
// cannot be read.
func State(pid int) (byte, bool) {
	f := StatFields(pid)
	if len(f) < 1 || len(f[0]) != 1 {
		return 0, false
	}
	return f[0][0], true
}

// PPid is pid's parent (0 if it cannot be read).
func PPid(pid int) int {
	f := StatFields(pid)
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// StartTime is field 22 of /proc/PID/stat: with the PID, it names one
// process for good ("" if it cannot be read).
func StartTime(pid int) string {
	f := StatFields(pid)
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// StartTicks is StartTime as a number, to compare: a process started
// after another has a start time at least as large.
func StartTicks(pid int) (uint64, bool) {
	t, err := strconv.ParseUint(StartTime(pid), 10, 64)
	return t, err == nil
}

// Status is what one read of /proc/PID/stat tells of a process.
type Status struct {
	State byte   // 'Z' for a zombie
	PPid  int    // its parent
	Flags uint64 // the kernel's PF_* flags
	Start uint64 // its start time (see StartTicks)
}

// pfExiting is the kernel's PF_EXITING: the process is exiting (its
// children are being handed to their new parent), not yet a zombie.
const pfExiting = 0x4

// Exiting reports whether the process is on its way out: a zombie, or
// about to be one.
func (s Status) Exiting() bool { return s.State == 'Z' || s.Flags&pfExiting != 0 }

// StatusOf reads pid's status in one read of /proc/PID/stat; false if it
// cannot be read.
func StatusOf(pid int) (Status, bool) {
	f := StatFields(pid)
	if len(f) < 20 || len(f[0]) != 1 {
		return Status{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	flags, err2 := strconv.ParseUint(f[6], 10, 64)
	start, err3 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Status{}, false
	}
	return Status{State: f[0][0], PPid: ppid, Flags: flags, Start: start}, true
}

// EnvScanLimit bounds how much of a process's environment Env reads: a
// descendant cannot make each look cost more than this, whatever the size
// of its environment. Start puts the tree's tag first in its children's
// environments.
const EnvScanLimit = 64 << 10

// ErrExecuting: the process is between the two halves of an execve, its
// new program's memory mapped but its environment not yet placed there.
var ErrExecuting = errors.New("process is executing a program")

// Env is the value of name in pid's environment as it was when pid
// executed its program, looked for in its first EnvScanLimit bytes ("" if
// unset there), or why the environment cannot be read.
//
// An execve in progress shows an empty environment (the kernel has not set
// the new memory's env_end yet): so an empty one is trusted only once
// /proc/PID/stat shows env_end set, and read again then; ErrExecuting if
// it is not set yet.
func Env(pid int, name string) (string, error) {
	v, n, err := readEnv(pid, name)
	if err != nil || n > 0 {
		return v, err
	}
	if f := StatFields(pid); len(f) < 49 || f[48] == "0" { // field 51, env_end
		return "", ErrExecuting
	}
	v, _, err = readEnv(pid, name)
	return v, err
}

// readEnv is Env's one read: the value, and how many bytes were read.
func readEnv(pid int, name string) (string, int, error) {
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/environ", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", 0, err
	}
	defer unix.Close(fd)
	b := make([]byte, EnvScanLimit)
	n := 0
	for n < len(b) {
		m, err := unix.Read(fd, b[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", 0, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	env := b[:n]
	if n == len(b) { // cut short: the last variable may be cut
		env = env[:bytes.LastIndexByte(env, 0)+1]
	}
	for _, kv := range bytes.Split(env, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(name+"=")); ok {
			return string(v), n, nil
		}
	}
	return "", n, nil
}

// Children lists pid's children (of every thread), read until two
// readings agree (at most eight readings). The kernel lists a thread's
// children one at a time, going on from the child it listed last; if that
// child was reaped meanwhile it counts its way back from the head of the
// list, and skips as many children as were reaped (fs/proc/array.c,
// get_children_pid: "we might miss some children"). A reading that
// skipped one differs from the next: the reaped child it listed is not in
// the next one. A child that a reaper's scan misses stays a zombie until
// the next SIGCHLD, which may never come.
func Children(pid int) []int {
	pids := childrenOnce(pid)
	for range 7 {
		again := childrenOnce(pid)
		if sameSet(pids, again) {
			break
		}
		pids = again
	}
	return pids
}

func childrenOnce(pid int) []int {
	var pids []int
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, _ := os.ReadDir(dir)
	for _, t := range tasks {
		for _, f := range strings.Fields(string(read(dir + "/" + t.Name() + "/children"))) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// sameSet reports whether a and b hold the same PIDs (each PID is listed
// once: a process has one parent).
func sameSet(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	in := make(map[int]bool, len(a))
	for _, p := range a {
		in[p] = true
	}
	for _, p := range b {
		if !in[p] {
			return false
		}
	}
	return true
}

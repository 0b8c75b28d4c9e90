//go:build linux

package main

// How a trial reads the CPU time its tree spends stopping.
//
// Reading every thread's /proc/PID/task/TID/schedstat just before SIGTERM
// makes the kernel build a /proc entry per thread, which it must tear down
// again when the thread is reaped: at N=64 that added about 20 ms to the
// floor's stop and 40 ms to multiexit's (whose workers have more threads),
// so the measurement disturbed what it measured. Where a cgroup v2 can be
// made, each trial's tree runs in a cgroup of its own and its CPU time is
// the cgroup's cpu.stat usage_usec, which touches no process.

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/multiexit/multiexit/internal/cgroupfs"

	"golang.org/x/sys/unix"
)

// cpuMeter measures one trial's tree.
type cpuMeter struct {
	dir string // the trial's cgroup; "" when counting per thread
	fd  int    // dir opened for SysProcAttr.CgroupFD
}

// cgroupBase is where trial cgroups are made: this process's own cgroup v2,
// if it is writable; "" if there is none. Found when the driver first
// asks, not at package initialisation: the pools' processes are this
// binary too, and must not pay for it.
var cgroupBase = sync.OnceValue(func() string {
	own, mount := "", ""
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if p, ok := strings.CutPrefix(line, "0::"); ok {
				own = p
			}
		}
	}
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// ... mount-point ... - fstype source options
			pre, post, ok := strings.Cut(sc.Text(), " - ")
			if f := strings.Fields(pre); ok && len(f) > 4 && strings.HasPrefix(post, "cgroup2 ") {
				mount = f[4]
			}
		}
		f.Close()
	}
	if own == "" || mount == "" {
		return ""
	}
	dir := filepath.Join(mount, own)
	if unix.Access(dir, unix.W_OK) != nil {
		return ""
	}
	return dir
})

// newCPUMeter makes the trial's cgroup, or falls back to counting per
// thread.
func newCPUMeter(tag string) *cpuMeter {
	if cgroupBase() == "" {
		return &cpuMeter{}
	}
	dir := filepath.Join(cgroupBase(), "mxbench."+tag)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return &cpuMeter{}
	}
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		os.Remove(dir)
		return &cpuMeter{}
	}
	return &cpuMeter{dir: dir, fd: fd}
}

// method says how CPU time is counted.
func (m *cpuMeter) method() string {
	if m.dir != "" {
		return "the trial's cgroup (cpu.stat)"
	}
	return "every thread's schedstat (no writable cgroup v2: this reading adds to the stop it measures)"
}

// attr starts a trial's parent in the cgroup.
func (m *cpuMeter) attr() *syscall.SysProcAttr {
	if m.dir == "" {
		return nil
	}
	return &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: m.fd}
}

// started is called once the parent has started.
func (m *cpuMeter) started() {
	if m.dir != "" {
		unix.Close(m.fd)
	}
}

// now is the CPU time the tree has used so far and the minor page faults
// of its processes (those in the trial's cgroup and below); pids are the
// processes to count without a cgroup.
func (m *cpuMeter) now(pids []int) (time.Duration, int64) {
	if m.dir == "" {
		return usage(pids)
	}
	b, err := os.ReadFile(filepath.Join(m.dir, "cpu.stat"))
	if err != nil {
		return 0, 0
	}
	var cpu time.Duration
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			us, _ := strconv.ParseInt(v, 10, 64)
			cpu = time.Duration(us) * time.Microsecond
		}
	}
	var faults int64
	filepath.WalkDir(m.dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		procs, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		for f := range strings.FieldsSeq(string(procs)) {
			if pid, err := strconv.Atoi(f); err == nil {
				faults += minflt(pid)
			}
		}
		return nil
	})
	return cpu, faults
}

// close removes the trial's cgroup (and any left inside it).
func (m *cpuMeter) close() error {
	if m.dir == "" {
		return nil
	}
	if err := cgroupfs.RemoveTree(m.dir); err != nil {
		return fmt.Errorf("remove the trial's cgroup: %w", err)
	}
	return nil
}

// minflt reads a process's minor page faults from /proc/PID/stat (one
// entry per process, not per thread).
func minflt(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	// After the command: state, ppid, pgrp, session, tty, tpgid, flags, minflt.
	if f := strings.Fields(string(b[i+1:])); len(f) > 7 {
		n, _ := strconv.ParseInt(f[7], 10, 64)
		return n
	}
	return 0
}

// newCPUMeterProbe says how this run counts CPU time, making and removing
// a cgroup to find out.
func newCPUMeterProbe() string {
	m := newCPUMeter(fmt.Sprintf("%d-probe", os.Getpid()))
	defer m.close()
	if m.dir != "" {
		unix.Close(m.fd)
	}
	return m.method()
}

package osproc

// The terminal's job control on Linux: a Foreground child's stop is
// mirrored by this process; and a signal's action reset to its default
// (stopSelf, and setDefault for End).

import (
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"github.com/multiexit/multiexit/internal/procfs"
	"golang.org/x/sys/unix"
)

// setForeground makes pgrp the terminal's foreground group. This process
// is in a background group then, so the kernel would stop it with SIGTTOU:
// the signal is blocked in the calling thread meanwhile.
func setForeground(fd, pgrp int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set, old unix.Sigset_t
	set.Val[(unix.SIGTTOU-1)/64] |= 1 << ((unix.SIGTTOU - 1) % 64)
	unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old)
	unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, pgrp)
	unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
}

// Watch runs the job control of t, the child just started, until it
// exits (see multiexit.Foreground): a stop of its group is mirrored by
// this process, and SIGCONT to this process continues it. The goroutine
// holds t's state (t.Locked) only while it looks at the child or signals
// its group, which is pinned then.
func (j *Job) Watch(t Target) {
	if j == nil {
		return
	}
	j.pgid = t.PID
	jobGroups.add(j.pgid)
	j.done = make(chan struct{})
	chld := make(chan os.Signal, 1)
	cont := make(chan os.Signal, 1)
	signal.Notify(chld, unix.SIGCHLD)
	signal.Notify(cont, unix.SIGCONT)
	go func() {
		defer close(j.done)
		defer signal.Stop(cont)
		defer signal.Stop(chld)
		// Asked once before any SIGCHLD: the child may have stopped
		// before Notify.
		if sig := stopSignal(t); sig != 0 {
			j.stopped(t, sig)
		}
		for {
			select {
			case <-t.Exited:
				return
			case <-chld:
				if sig := stopSignal(t); sig != 0 {
					j.stopped(t, sig)
				}
			case <-cont:
				j.resume(t)
			}
		}
	}()
}

// stopSignal is the signal that stopped the child since it was last
// asked, or 0. The stop is taken from the kernel (waitid WSTOPPED, without
// WEXITED: the exit status stays exec.Cmd.Wait's); nothing else here asks
// for stops.
func stopSignal(t Target) (sig unix.Signal) {
	t.Locked(func(exited, _ bool) {
		if exited {
			return
		}
		var info unix.Siginfo
		if err := unix.Waitid(unix.P_PID, t.PID, &info, unix.WSTOPPED|unix.WNOHANG, nil); err != nil || info.Code != cldStopped {
			return
		}
		sig = unix.Signal(siginfoStatus(&info))
	})
	return sig
}

// cldStopped is siginfo_t's si_code for a child stopped by a signal.
const cldStopped = 5

// siginfoStatus is si_status of a siginfo_t that waitid filled: the
// fields for SIGCHLD (si_pid, si_uid, si_status) follow si_signo, si_errno
// and si_code in a union aligned as a pointer, on every Linux architecture.
func siginfoStatus(info *unix.Siginfo) int32 {
	off := uintptr(16) // 3 int32, padded to a pointer's alignment
	if unsafe.Sizeof(uintptr(0)) == 4 {
		off = 12
	}
	return *(*int32)(unsafe.Add(unsafe.Pointer(info), off+8))
}

// stopped mirrors a stop of the child's group by sig (see
// multiexit.Foreground).
func (j *Job) stopped(t Target, sig unix.Signal) {
	stopping := false
	t.Locked(func(_, s bool) { stopping = s })
	if stopping {
		j.resume(t) // its stop began: it must run to exit
		return
	}
	self := unix.Getpgrp()
	fg, _ := unix.IoctlGetInt(j.tty, unix.TIOCGPGRP)
	switch {
	case (sig == unix.SIGTTIN || sig == unix.SIGTTOU) && fg == self:
		// Stopped for using the terminal from the background, while
		// this process has its foreground: the job was brought to the
		// foreground (fg of a job started in the background, which sends
		// no SIGCONT to a running job). The foreground is the child's.
		j.resume(t)
		return
	case fg == j.pgid:
		setForeground(j.tty, self)
	}
	orphaned, others := ownGroup()
	if sig != unix.SIGSTOP && orphaned {
		if sig != unix.SIGTSTP {
			j.signalGroup(t, unix.SIGHUP)
		}
		j.resume(t)
		return
	}
	// The rest of this process's group (a pipeline: prog | tee) stops
	// too, as it would if the terminal's Ctrl-Z had reached the group.
	for _, pid := range others {
		signalMember(pid, sig)
	}
	stopSelf(sig)
	// Continued: the SIGCONT that did it reaches resume through cont.
}

// signalGroup sends sig to the child's group (a job's child leads its
// own: ToForeground refuses any other) while the child has not exited.
func (j *Job) signalGroup(t Target, sig unix.Signal) {
	t.Locked(func(exited, _ bool) {
		if !exited {
			unix.Kill(-j.pgid, sig)
		}
	})
}

// resume continues the child's group, giving it the terminal's foreground
// first if this process has it.
func (j *Job) resume(t Target) {
	t.Locked(func(exited, _ bool) {
		if exited {
			return
		}
		if fg, err := unix.IoctlGetInt(j.tty, unix.TIOCGPGRP); err == nil && fg == unix.Getpgrp() {
			setForeground(j.tty, j.pgid)
		}
		unix.Kill(-j.pgid, unix.SIGCONT)
	})
}

// stopSelf stops this process by sig's default action, as the kernel
// stops a job's process, so that its parent (a shell) sees it stopped by
// sig. The signal's handler (Go's, if the program catches sig) is set
// aside meanwhile, and sig unblocked, in the calling thread: the signal is
// sent to that thread, which stops before its system call returns; it
// returns once the process was continued (or at once, if the kernel
// discarded the stop: an orphaned group).
func stopSelf(sig unix.Signal) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set, old unix.Sigset_t
	set.Val[(sig-1)/64] |= 1 << ((uint(sig) - 1) % 64)
	unix.PthreadSigmask(unix.SIG_UNBLOCK, &set, &old)
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	if sig != unix.SIGSTOP {
		var dfl, saved sigactionBuf // all zero: SIG_DFL, no flags, no mask
		if err := sigaction(sig, &dfl, &saved); err != nil {
			sig = unix.SIGSTOP // still a stop, by the signal no one catches
		} else {
			defer sigaction(sig, &saved, nil)
		}
	}
	unix.Tgkill(unix.Getpid(), unix.Gettid(), sig)
}

// sigactionBuf holds the kernel's struct sigaction, whatever its layout on
// this architecture (at most 32 bytes): it is only read and written back
// whole, or all zero (SIG_DFL).
type sigactionBuf [64]byte

// sigaction is rt_sigaction(2). The size of the kernel's signal set is 8
// bytes but on MIPS (16): the first the kernel takes is the one.
func sigaction(sig unix.Signal, act, old *sigactionBuf) error {
	var err error
	for _, size := range []uintptr{8, 16} {
		var oldp unsafe.Pointer
		if old != nil {
			oldp = unsafe.Pointer(old)
		}
		_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(act)), uintptr(oldp), size, 0, 0)
		if e == 0 {
			return nil
		}
		if err = e; e != unix.EINVAL {
			break
		}
	}
	return err
}

// ownGroup reads this process's group from /proc: whether it is orphaned
// (no member has a parent in another group of the same session, the
// kernel's rule: no shell would continue it, and the kernel discards the
// terminal's stop signals to it), and its other members. If /proc cannot
// be read, the group is taken as not orphaned, with no other member.
func ownGroup() (orphaned bool, others []int) {
	self := unix.Getpid()
	pgrp := strconv.Itoa(unix.Getpgrp())
	sid, err := unix.Getsid(0)
	if err != nil {
		return false, nil
	}
	session := strconv.Itoa(sid)
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return false, nil
	}
	orphaned = true
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		f := procfs.StatFields(pid) // state, ppid, pgrp, session, …
		if len(f) < 4 || f[2] != pgrp || f[0] == "Z" {
			continue
		}
		if pid != self {
			others = append(others, pid)
		}
		ppid, _ := strconv.Atoi(f[1])
		if p := procfs.StatFields(ppid); len(p) >= 4 && p[2] != pgrp && p[3] == session {
			orphaned = false
		}
	}
	return orphaned, others
}

// signalMember sends sig to pid, a member of this process's group when
// ownGroup read it, through a pidfd, and only if it is still in the group
// once the pidfd holds it (never to a process that took over its PID).
func signalMember(pid int, sig unix.Signal) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if f := procfs.StatFields(pid); len(f) >= 3 && f[2] == strconv.Itoa(unix.Getpgrp()) {
		unix.PidfdSendSignal(fd, sig, nil, 0)
	}
}

// signalParent sends sig to ppid if it is still this process's parent,
// through a pidfd: never to a process that took over its PID.
func signalParent(ppid int, sig unix.Signal) {
	fd, err := unix.PidfdOpen(ppid, 0)
	if err != nil {
		if unix.Getppid() == ppid {
			unix.Kill(ppid, sig) // a kernel without pidfds
		}
		return
	}
	defer unix.Close(fd)
	if unix.Getppid() == ppid { // the pidfd is the parent's, alive or not
		unix.PidfdSendSignal(fd, sig, nil, 0)
	}
}

// setDefault sets sig's action to the default, whatever it was: also a
// signal this process was started with ignored (signal.Reset would keep it
// ignored). An all-zero struct sigaction is SIG_DFL, no flags and an empty
// mask on every architecture. It also unblocks sig in the calling thread.
func setDefault(sig syscall.Signal) {
	var act [4]uint64
	syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	var set unix.Sigset_t
	set.Val[(int(sig)-1)/64] |= 1 << (uint(sig-1) % 64)
	unix.PthreadSigmask(unix.SIG_UNBLOCK, &set, nil)
}

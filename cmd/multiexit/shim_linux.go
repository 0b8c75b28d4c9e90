//go:build linux && !mips && !mipsle && !mips64 && !mips64le

package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The exec shim passes COMMAND the signal configuration that Go's own
// start of a process cannot. Go's child resets every signal the runtime
// handles to its default before it executes COMMAND (only an ignored
// signal that the runtime does not handle stays ignored), and it keeps
// the forking thread's mask, from which the runtime removed the signals it
// must get (SIGSEGV, SIGTERM, ...). When multiexit's caller ignored such a
// signal (SIGSEGV, SIGCHLD, SIGPROF) or blocked one, multiexit starts
// itself as the shim: it sets the caller's dispositions and mask on its
// thread and executes COMMAND in place, so COMMAND's PID is the shim's.
const (
	shimArg0 = "multiexit: exec" // argv[0] of the shim: no command is named so
	shimVar  = "MULTIEXIT_EXEC"  // IGNORED:BLOCKED, two hexadecimal sigSets
)

// passOn returns cmd, or, when Go's start of cmd would not give it the
// signal configuration of multiexit's caller, a command that starts the
// shim to execute cmd with it. Call it once multiexit caught and ignored
// its signals (catchSignals).
func passOn(cmd *exec.Cmd, caller callerConfig) *exec.Cmd {
	want := caller.ignored &^ sigSet(0).with(unix.SIGKILL).with(unix.SIGSTOP)
	// (want == 0 first: most callers ignore nothing, and ignoredNow reads a file.)
	if cmd.Err != nil || (want == 0 || want&^ignoredNow() == 0) && caller.blocked == blockedNow() {
		return cmd
	}
	shim := exec.Command("/proc/self/exe")
	shim.Args = append([]string{shimArg0, cmd.Path}, cmd.Args...)
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	shim.Env = append(slices.Clip(env), fmt.Sprintf("%s=%x:%x", shimVar, uint64(want), uint64(caller.blocked)))
	shim.Dir, shim.Stdin, shim.Stdout, shim.Stderr = cmd.Dir, cmd.Stdin, cmd.Stdout, cmd.Stderr
	shim.ExtraFiles, shim.SysProcAttr = cmd.ExtraFiles, cmd.SysProcAttr
	return shim
}

// runShim is the shim (see passOn): it returns at once unless this
// process was started as one, else it executes COMMAND and never returns.
func runShim() {
	conf, ok := os.LookupEnv(shimVar)
	if !ok || len(os.Args) < 3 || os.Args[0] != shimArg0 {
		return
	}
	os.Unsetenv(shimVar)
	path, argv := os.Args[1], os.Args[2:]
	var ignored, blocked uint64
	if _, err := fmt.Sscanf(conf, "%x:%x", &ignored, &blocked); err != nil {
		fmt.Fprintf(os.Stderr, "multiexit: %s=%q: %v\n", shimVar, conf, err)
		os.Exit(statusFailed)
	}
	runtime.LockOSThread() // the mask set here is the one exec passes on
	for sig := syscall.Signal(1); sig <= 64; sig++ {
		if sigSet(ignored).has(sig) {
			ignore(sig)
		}
	}
	unix.PthreadSigmask(unix.SIG_SETMASK, toSigset(sigSet(blocked)), nil)
	err := syscall.Exec(path, argv, os.Environ())
	if err == syscall.ENOEXEC {
		// A file without a #! line: /bin/sh runs it, as execvp(3) does.
		err = syscall.Exec("/bin/sh", append([]string{"sh", path}, argv[1:]...), os.Environ())
	}
	fmt.Fprintf(os.Stderr, "multiexit: %s: %v\n", argv[0], err)
	switch err {
	case syscall.ENOENT, syscall.ENOTDIR:
		os.Exit(statusNotFound)
	}
	os.Exit(statusNotExec)
}

// ignore sets sig's action to SIG_IGN. The kernel's struct sigaction
// begins with the handler on every Linux platform but MIPS (excluded by
// this file's build constraint); SIG_IGN is 1, and no flags, restorer or
// mask.
func ignore(sig syscall.Signal) {
	act := [4]uint64{1}
	syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
}

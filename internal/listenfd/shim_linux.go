package listenfd

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The exec shim: how a program that is not a multiexit worker (C, Python,
// any Go program) gets LISTEN_PID set to its own PID, which os/exec cannot
// write, since it runs no code between fork and exec. The parent starts
// this binary (/proc/self/exe) instead of the command, with the command's
// own argv; the shim takes over in the root package's initialisation
// (Shim), sets LISTEN_PID to its PID and execve(2)s the command, which
// keeps the PID: the value is right, and the process the parent started,
// signals, contains and waits for is the command's. The cost is one more
// exec of this binary (BenchmarkShim).
//
// It takes over only when its own parent started it for that purpose: the
// variable names the parent's PID and start time (/proc/PID/stat), which
// must be this process's parent, the status descriptor must be a pipe and
// the LISTEN_FDS descriptors sockets; and never in a set-user-ID or
// set-group-ID program (else anyone could make such a binary execute a
// path of their choice). Anything else is ignored with a warning on
// standard error, and the program runs normally.
//
// What the command inherits through the shim, as it would without it: its
// argv, environment (less the shim's variable, plus LISTEN_PID), working
// directory, credentials, process group, rlimits (Go restores the
// descriptor limit it raised), descriptors 0-2 and 3.., and the signals
// its parent ignored: the shim's Go runtime catches them, so the parent
// passes its SigIgn set and the shim ignores them again before the exec
// (all but SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV and SIGPROF, which Go
// will not ignore). One difference: the signal mask. Go's runtime unblocks
// SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGABRT and the synchronous signals at
// start and keeps no record of the mask it was started with, so the
// command starts with those unblocked even if its parent had blocked them.
// A shim whose exec fails writes the errno to the status pipe and exits
// 127; Handoff.Started returns it as os/exec would have.

const shimVar = "MULTIEXIT_LISTEN_EXEC"

// selfExe is this binary, as the kernel holds it: a deploy that replaces or
// deletes the file does not change what it runs.
const selfExe = "/proc/self/exe"

// viaShim rewrites cmd to start through the shim and adds the shim's
// variable to env; n sockets come first, then cmd.ExtraFiles, then the
// status pipe. A command that os/exec will refuse (cmd.Err) is left as it
// is, so that its Start reports why.
func viaShim(cmd *exec.Cmd, n int, env *[]string) (*Handoff, error) {
	if cmd.Err != nil {
		return &Handoff{}, nil
	}
	if os.Getuid() != os.Geteuid() || os.Getgid() != os.Getegid() {
		return nil, errors.New("refused in a set-user-ID or set-group-ID program (the shim would refuse it too)")
	}
	self := os.Getpid()
	start := startTime(self)
	if start == "" {
		return nil, fmt.Errorf("cannot read the start time of process %d from /proc", self)
	}
	ign, err := ignoredSignals()
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	path := cmd.Path
	if len(cmd.Args) == 0 {
		cmd.Args = []string{path}
	}
	status := StartFD + n + len(cmd.ExtraFiles)
	*env = append(*env, fmt.Sprintf("%s=%d;%s;%d;%d;%x;%s", shimVar, self, start, status, n, ign, path))
	cmd.Path = selfExe
	return &Handoff{path: path, status: r, w: w}, nil
}

// Shim is the exec shim's entry. The root package's init calls it first
// thing: if this process was started as a shim (see viaShim) it never
// returns: it executes the command, or exits 127 if it cannot. Otherwise,
// and in a program that merely inherited the variable, it returns, and the
// program runs normally (the variable is removed, with a warning if it
// was set). Linux only; elsewhere it does nothing.
func Shim() {
	v, ok := os.LookupEnv(shimVar)
	if !ok {
		return
	}
	os.Unsetenv(shimVar)
	s, err := parseShim(v)
	if err != nil {
		warn(fmt.Sprintf("multiexit: %s is set, but this process was not started as an exec shim (%v); ignored\n", shimVar, err))
		return
	}
	s.exec()
}

type shim struct {
	status int
	ign    uint64
	path   string
}

// parseShim checks that this process's parent started it as an exec shim
// (see Shim). It changes nothing.
func parseShim(v string) (*shim, error) {
	f := strings.SplitN(v, ";", 6)
	if len(f) != 6 {
		return nil, fmt.Errorf("want 6 fields separated by ';', found %d", len(f))
	}
	if os.Getuid() != os.Geteuid() || os.Getgid() != os.Getegid() {
		return nil, errors.New("a set-user-ID or set-group-ID program is never a shim")
	}
	ppid, err := strconv.Atoi(f[0])
	if err != nil || ppid < 1 {
		return nil, fmt.Errorf("parent PID %q is not a process's", f[0])
	}
	if ppid != os.Getppid() {
		return nil, fmt.Errorf("process %d is not this process's parent (%d)", ppid, os.Getppid())
	}
	if st := startTime(ppid); st != f[1] {
		return nil, fmt.Errorf("process %d started at %q, not at %q", ppid, st, f[1])
	}
	status, err := strconv.Atoi(f[2])
	var st unix.Stat_t
	if err != nil || unix.Fstat(status, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return nil, fmt.Errorf("status descriptor %q is not a pipe", f[2])
	}
	n, err := strconv.Atoi(f[3])
	if err != nil || n < 1 || strconv.Itoa(n) != os.Getenv(EnvFDs) {
		return nil, fmt.Errorf("descriptor count %q is not %s=%q", f[3], EnvFDs, os.Getenv(EnvFDs))
	}
	for fd := StartFD; fd < StartFD+n; fd++ {
		if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
			return nil, fmt.Errorf("descriptor %d is not a socket", fd)
		}
	}
	ign, err := strconv.ParseUint(f[4], 16, 64)
	if err != nil {
		return nil, fmt.Errorf("ignored-signal mask %q is not hexadecimal", f[4])
	}
	if f[5] == "" {
		return nil, errors.New("no command")
	}
	return &shim{status: status, ign: ign, path: f[5]}, nil
}

// exec executes the command with LISTEN_PID set to this process's PID;
// if it cannot, it writes the errno to the status pipe and exits 127.
func (s *shim) exec() {
	os.Setenv(EnvPID, strconv.Itoa(os.Getpid()))
	unix.CloseOnExec(s.status)
	for sig := 1; sig <= 64; sig++ {
		if s.ign&(1<<(sig-1)) != 0 {
			signal.Ignore(syscall.Signal(sig))
		}
	}
	err := syscall.Exec(s.path, os.Args, os.Environ())
	errno, ok := err.(syscall.Errno)
	if !ok {
		errno = syscall.EINVAL
	}
	unix.Write(s.status, []byte{byte(errno), byte(errno >> 8), byte(errno >> 16), byte(errno >> 24)})
	os.Exit(127)
}

// warn writes to standard error with one write(2): never through os.Stderr,
// whose write to a closed pipe would end the process by SIGPIPE.
func warn(s string) { unix.Write(2, []byte(s)) }

// startTime is field 22 of /proc/PID/stat: with the PID, it names one
// process for good ("" if it cannot be read).
func startTime(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// ignoredSignals is this process's set of ignored signals (SigIgn in
// /proc/self/status): what a child inherits as ignored.
func ignoredSignals() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no SigIgn in /proc/self/status")
}

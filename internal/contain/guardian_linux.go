package contain

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/multiexit/multiexit/internal/errout"
	"github.com/multiexit/multiexit/internal/procfs"
	"golang.org/x/sys/unix"
)

// The guardian: the tree's last line of defence when this process is
// SIGKILLed. It is this binary re-executed (/proc/self/exe), outside the
// tree's cgroup, with a pipe from this process on descriptor 3 and the tree
// cgroup's lock (see lockCgroup) on descriptor 4. Told the PIDs of the
// direct children (and which are workers) and the grace period, it waits
// for the pipe to close (this process died or finished), gives the workers
// — which see the death too and run their hooks — up to the shutdown
// deadline to exit, and the rest of the tree the grace period after a
// SIGTERM (an external child's is its Pdeathsig), then kills the tree's
// cgroup and removes it. It holds the lock all along, so that another
// program's Start does not take the tree of this process, SIGKILLed, for
// stale and kill it before the deadline.
//
// It takes over in package multiexit's initialisation (see GuardianMain),
// before the program's main, and only when its own parent started it for
// that purpose: the variable must name the parent's PID and start time, the
// parent's own tree cgroup, descriptor 3 must be a pipe and descriptor 4
// that cgroup's directory. Anything else is ignored with a warning, and the
// program runs normally.

const guardianVar = "MULTIEXIT_GUARDIAN"

// guardianLink is the parent's end of its guardian.
type guardianLink struct {
	w    int       // the pipe's write end; the guardian acts when it closes
	dead int       // with WaitFirst, the write end the guardian waits on before Go starts; else -1
	cmd  *exec.Cmd // its status is exec.Cmd.Wait's
}

// WaitFirst says that this program's binary, started as a guardian with
// WaitVar=5 in its environment and a pipe's read end on descriptor 5,
// blocks before the Go runtime starts until every write end of that pipe
// is closed, then closes it and starts as usual (the command-line tool
// does, in a C constructor: see cmd/multiexit/guardian_cgo_linux.go).
// The guardian then gets that pipe, whose write end this process holds
// (close-on-exec) and closes when it closes the guardian's pipe: its Go
// start, a second Go process beside this one, is paid only if this
// process dies or leaves the tree to it; a run that ends normally kills
// it still waiting (Close). It is armed as before from its fork: it
// holds the pipe, whose messages (tell) wait in the pipe's buffer (64
// KiB; a line that does not fit is dropped, as when the guardian is
// slow, so this suits a program that starts few children), and the
// lock, and acts on the cgroup. Linux only; set it before Install.
var WaitFirst bool

// WaitVar is the variable of WaitFirst.
const WaitVar = "MULTIEXIT_GUARDIAN_WAIT"

// startGuardian starts the guardian of the tree cgroup root, whose lock
// (lockCgroup's) it inherits: once the pipe closes, it gives the direct
// children up to timeout, then kills root. self gives the binary to run
// (this process's), env is its environment, without this process's worker
// and tree variables.
func startGuardian(self func() (string, error), root string, lock *os.File, timeout time.Duration, env []string) (*guardianLink, error) {
	exe, err := self()
	if err != nil {
		return nil, fmt.Errorf("guardian: %w", err)
	}
	var p [2]int
	// The write end never blocks: it is written under the containment's
	// lock, and a line that does not fit (the guardian stopped reading) is
	// dropped.
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("guardian: %w", err)
	}
	r, w := os.NewFile(uintptr(p[0]), "|0"), p[1]
	unix.SetNonblock(w, true)
	cmd := exec.Command(exe)
	if len(os.Args) > 0 {
		cmd.Args[0] = os.Args[0]
	}
	cmd.Env = append(env, fmt.Sprintf("%s=%s;%d;%d;%s", guardianVar, root, int64(timeout), os.Getpid(), procfs.StartTime(os.Getpid())))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// Not this process's working directory, which the guardian would keep
	// busy for the whole run (Prepare may fork it before the tool leaves
	// its own: see cmd/multiexit's leaveWorkingDir).
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{r, lock}                  // descriptors 3 and 4
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // not killed by a terminal's Ctrl-C
	dead := -1
	if WaitFirst {
		var d [2]int
		if err := unix.Pipe2(d[:], unix.O_CLOEXEC); err != nil {
			r.Close()
			unix.Close(w)
			return nil, fmt.Errorf("guardian: %w", err)
		}
		dr := os.NewFile(uintptr(d[0]), "|0")
		defer dr.Close()
		dead = d[1]
		cmd.ExtraFiles = append(cmd.ExtraFiles, dr) // descriptor 5
		cmd.Env = append(cmd.Env, WaitVar+"=5")
	}
	err = cmd.Start()
	r.Close()
	if err != nil {
		unix.Close(w)
		if dead >= 0 {
			unix.Close(dead)
		}
		return nil, fmt.Errorf("guardian: %w", err)
	}
	return &guardianLink{w: w, dead: dead, cmd: cmd}, nil
}

// tell sends the guardian one line: "+PID" or "-PID", a direct child
// started or gone ("+PID w": a worker), or "grace N", the grace period
// in nanoseconds. A nil guardian is told nothing.
func (g *guardianLink) tell(line string) {
	if g != nil {
		unix.Write(g.w, []byte(line+"\n"))
	}
}

// kill ends the guardian once this process has emptied the tree's
// cgroup itself: it has nothing left to guard, so it is killed wherever
// it is, even still starting. Waiting for it to see the pipe close
// instead would put its whole start, a second Go process's, on the path
// of this process's exit.
func (g *guardianLink) kill() {
	g.cmd.Process.Kill()
}

// reap waits for the killed guardian, so that nothing of this process
// outlives it, and closes the pipe.
func (g *guardianLink) reap() {
	g.cmd.Wait()
	g.closePipes()
}

// leave closes the pipe and leaves the guardian to act on it, without
// waiting: what this process could not remove, it kills and removes. The
// guardian is not in the tree, and holds nothing of it.
func (g *guardianLink) leave() {
	g.closePipes()
}

func (g *guardianLink) closePipes() {
	if g.dead >= 0 {
		unix.Close(g.dead) // first: the guardian starts, then reads the pipe to its end
	}
	unix.Close(g.w)
}

// GuardianMain makes this process the guardian its parent started, if it
// is one: it guards the tree and exits, never returning. Otherwise it
// returns at once (with a warning on standard error if the guardian's
// variable is set but this process was not started as one). Package
// multiexit calls it first thing in its initialisation, before the
// program's main.
func GuardianMain() {
	v, ok := os.LookupEnv(guardianVar)
	if !ok {
		return
	}
	g, err := parseGuardian(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "multiexit: %s is set, but this process was not started as a guardian (%v); ignored\n", guardianVar, err)
		os.Unsetenv(guardianVar)
		return
	}
	os.Exit(g.guard())
}

type guardian struct {
	root    string
	timeout time.Duration
	pipe    *os.File
	lock    *os.File // root's lock, shared with the parent: held until exit
}

// parseGuardian checks that this process's parent started it as its
// guardian: the variable names the parent (PID and start time) and the
// parent's own tree cgroup, descriptor 3 is a pipe and descriptor 4 that
// cgroup's directory. It changes nothing.
func parseGuardian(v string) (*guardian, error) {
	f := strings.Split(v, ";")
	if len(f) != 4 {
		return nil, fmt.Errorf("want 4 fields separated by ';', found %d", len(f))
	}
	timeout, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || timeout <= 0 {
		return nil, fmt.Errorf("timeout %q is not a positive number", f[1])
	}
	ppid, err := strconv.Atoi(f[2])
	if err != nil || ppid < 1 {
		return nil, fmt.Errorf("parent PID %q is not a process's", f[2])
	}
	var st unix.Stat_t
	if err := unix.Fstat(3, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return nil, errors.New("descriptor 3 is not a pipe")
	}
	var fs unix.Statfs_t
	if err := unix.Fstat(4, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR ||
		unix.Fstatfs(4, &fs) != nil || fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return nil, errors.New("descriptor 4 is not a cgroup v2 directory")
	}
	lockDev, lockIno := st.Dev, st.Ino
	alive := func() bool {
		state, _ := procfs.State(ppid)
		return procfs.StartTime(ppid) == f[3] && state != 'Z'
	}
	if ppid != os.Getppid() && alive() {
		// The parent is dying: its threads exit one by one, and this
		// process, the child of one of them, was handed to another
		// reaper before the last. Wait for the rest of it.
		waitGone(ppid, 5*time.Second)
	}
	switch {
	case ppid == os.Getppid() && alive():
		// The parent is alive and is this process's.
	case !alive():
		// The parent died (a zombie, or gone) before this process
		// could look at it: it was SIGKILLed right after starting its
		// guardian. (A child it was forking then may still hold the
		// pipe's write end, until it executes.) Its tree is stale: only
		// such a tree, named after a dead process, can be acted on
		// this way, as the next Start of its PID namespace would.
	default:
		return nil, fmt.Errorf("process %d (started at %q) is not this process's parent (%d)", ppid, f[3], os.Getppid())
	}
	// The cgroup must be that parent's tree: named after it (PID, start
	// time, PID namespace), in the cgroup v2 hierarchy. Where it is in
	// the hierarchy is not checked: the parent may have moved since it
	// named it.
	mnt, err := cgroupMount()
	if err != nil {
		return nil, err
	}
	root := filepath.Clean(f[0])
	name := fmt.Sprintf("multiexit.%s.%d.%s", pidNamespace(), ppid, f[3])
	if filepath.Base(root) != name || !strings.HasPrefix(root, mnt+"/") {
		return nil, fmt.Errorf("cgroup %q is not the tree of process %d (%s under %s)", f[0], ppid, name, mnt)
	}
	// Descriptor 4 is that cgroup, locked. (It may be gone, if something
	// that ignores the lock removed it: then there is nothing to compare,
	// nor to kill.)
	if unix.Stat(root, &st) == nil && (st.Dev != lockDev || st.Ino != lockIno) {
		return nil, fmt.Errorf("descriptor 4 is not cgroup %s", root)
	}
	return &guardian{root: root, timeout: time.Duration(timeout), pipe: os.NewFile(3, "multiexit-guardian"), lock: os.NewFile(4, root)}, nil
}

func (g *guardian) guard() int {
	signal.Ignore(unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	live, workers := map[int]bool{}, map[int]bool{}
	grace := g.timeout // a parent that did not say: the deadline for all
	sc := bufio.NewScanner(g.pipe)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "grace "); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				grace = min(time.Duration(n), g.timeout)
			}
			continue
		}
		if len(line) < 2 || (line[0] != '+' && line[0] != '-') {
			continue
		}
		rest, worker := strings.CutSuffix(line[1:], " w")
		if pid, err := strconv.Atoi(rest); err == nil {
			live[pid] = line[0] == '+'
			workers[pid] = worker
		}
	}
	// The parent is gone. Its direct children see that too: a worker
	// runs its hooks, within the deadline; an external child got its
	// Pdeathsig (SIGTERM unless its caller chose another). The rest of
	// the tree but the workers' own (their descendants are theirs to
	// stop) gets SIGTERM now: all of that has the grace period, then
	// SIGKILL, as in the parent's own stop. The workers have the
	// deadline, and then the cgroup is killed.
	start := time.Now()
	graceEnd, end := start.Add(grace), start.Add(g.timeout)
	var ext, loose []int // pidfds
	for pid, alive := range live {
		if alive && !workers[pid] {
			if fd, ok := pinInCgroup(pid, g.root); ok {
				ext = append(ext, fd)
			}
		}
	}
	isWorker := func(pid int) bool { return live[pid] && workers[pid] }
	for _, pid := range cgroupProcs(g.root) {
		if live[pid] || underWorker(pid, isWorker) {
			continue
		}
		if fd, ok := pinInCgroup(pid, g.root); ok {
			unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0)
			unix.PidfdSendSignal(fd, unix.SIGCONT, nil, 0)
			loose = append(loose, fd)
		}
	}
	all := append(ext, loose...)
	waitAllGone(all, graceEnd)
	for _, fd := range all {
		unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		unix.Close(fd)
	}
	for pid, alive := range live {
		if alive && workers[pid] {
			waitGone(pid, time.Until(end))
		}
	}
	// Standard error, but never by a write that a broken pipe would turn
	// into the guardian's death before the kill: a duplicate of it, made
	// at the first line (see internal/errout).
	var stderr *os.File
	say := func(format string, args ...any) {
		if stderr == nil {
			stderr = errout.Dup()
		}
		fmt.Fprintf(stderr, format, args...)
	}
	if left := cgroupProcs(g.root); len(left) > 0 {
		say("multiexit guardian: parent gone; killing %d processes left in %s\n", len(left), g.root)
	}
	err := killCgroup(g.root, 5*time.Second)
	g.lock.Close() // the tree is gone, or left for the next Start to remove
	// Trees that other dead programs left beside it (of a PID namespace
	// that died, say): as the next Start would.
	cleanStaleCgroups(filepath.Dir(g.root))
	if err != nil {
		say("multiexit guardian: %v\n", err)
		return 1
	}
	return 0
}

// pinInCgroup opens a pidfd of pid if pid is a process of cgroup cg (or
// below): the pidfd then names that process, whatever happens to its PID.
func pinInCgroup(pid int, cg string) (int, bool) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return 0, false
	}
	if !inCgroup(pid, cg) {
		unix.Close(fd)
		return 0, false
	}
	return fd, true
}

// underWorker reports whether one of pid's ancestors (at most 64 levels
// up) is a worker: its descendants are its own to stop.
func underWorker(pid int, isWorker func(int) bool) bool {
	for range 64 {
		pid = procfs.PPid(pid)
		if pid <= 1 {
			return false
		}
		if isWorker(pid) {
			return true
		}
	}
	return false
}

// waitAllGone waits until every process of fds (pidfds) has exited, or
// until.
func waitAllGone(fds []int, until time.Time) {
	pfds := make([]unix.PollFd, 0, len(fds))
	for _, fd := range fds {
		pfds = append(pfds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	for len(pfds) > 0 {
		d := time.Until(until)
		if d <= 0 {
			return
		}
		n, err := unix.Poll(pfds, int(d.Milliseconds())+1)
		if err != nil && err != unix.EINTR {
			return
		}
		if n <= 0 {
			continue
		}
		pfds = slices.DeleteFunc(pfds, func(p unix.PollFd) bool { return p.Revents != 0 })
	}
}

// waitGone waits for a process that is not our child to exit, through a
// pidfd (no PID reuse race).
func waitGone(pid int, d time.Duration) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // already gone
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for d > 0 {
		start := time.Now()
		n, err := unix.Poll(fds, int(d.Milliseconds())+1)
		if n > 0 || (err != nil && err != unix.EINTR) {
			return
		}
		d -= time.Since(start)
	}
}

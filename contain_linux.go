package multiexit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// treeVar tags every child that Start starts, and so every descendant that
// keeps its environment, with "<parent pid>.<entry>": an orphan that
// reparents to this process (a subreaper) says which entry it belongs to.
const treeVar = "MULTIEXIT_TREE"

var tree struct {
	mu      sync.Mutex // held across a fork and its tracking, and by the reaper
	layer   Layer
	root    string // the tree's cgroup (LayerCgroup), made at the first Start
	made    bool
	seq     int
	prefix  string         // "<pid>.": the tags of this process's entries
	tracked map[int]bool   // children whose status exec.Cmd.Wait owns
	adopted map[int]string // orphans seen alive with one of our tags
	pid1    bool
	// lingering: zombies, as PID 1, that no one has claimed yet
	lingering map[int]bool

	guardian     *os.File // write end; the guardian acts when it closes
	guardianProc *exec.Cmd
}

// initContainment chooses the layer: cgroup v2 where a writable hierarchy
// exists, else the subreaper, else process groups. It also starts the
// reaper of orphans.
func initContainment(cfg config) Layer {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	tree.tracked = map[int]bool{}
	tree.adopted = map[int]string{}
	tree.lingering = map[int]bool{}
	tree.prefix = strconv.Itoa(os.Getpid()) + "."
	tree.pid1 = os.Getpid() == 1
	tree.layer = LayerProcessGroup
	limit := os.Getenv(ContainmentVar)
	if limit == LayerProcessGroup.String() {
		return tree.layer
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		cfg.log.Warn("multiexit: cannot become a child subreaper; containment is by process group only", "err", err)
		return tree.layer
	}
	tree.layer = LayerSubreaper
	root, err := "", errors.New(ContainmentVar+"=subreaper")
	if limit != LayerSubreaper.String() {
		// A probe: the tree's cgroup is made at the first Start, so a
		// process that never starts children leaves none behind.
		if root, err = makeTreeCgroup(); err == nil {
			os.Remove(root)
		}
	}
	if err == nil {
		tree.root, tree.layer = root, LayerCgroup
	}
	go reaper()
	if cfg.trace {
		cfg.log.Info("multiexit: containment", "layer", tree.layer.String(), "cgroup", tree.root, "cgroup_unavailable", errString(err))
	}
	return tree.layer
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

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

// makeTreeCgroup creates multiexit.<pid namespace>.<pid>.<start time> in
// this process's cgroup, after removing those left by dead trees. PIDs and
// start times mean something only in their PID namespace, and cgroups are
// shared across namespaces: a directory is judged only by a process of the
// namespace that made it.
func makeTreeCgroup() (string, error) {
	mnt, err := cgroupMount()
	if err != nil {
		return "", err
	}
	own, err := ownCgroup()
	if err != nil {
		return "", err
	}
	parent := filepath.Join(mnt, own)
	cleanStaleCgroups(parent)
	dir := filepath.Join(parent, fmt.Sprintf("multiexit.%s.%d.%s", pidNamespace(), os.Getpid(), startTime(os.Getpid())))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("cgroup v2 at %s is not writable: %w", parent, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.kill")); err != nil {
		os.Remove(dir)
		return "", errors.New("cgroup.kill is not supported (Linux 5.14 or later needed)")
	}
	return dir, nil
}

// startTime is field 22 of /proc/PID/stat: with the PID, it names one
// process for good.
func startTime(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	if i := bytes.LastIndexByte(b, ')'); i >= 0 {
		if f := strings.Fields(string(b[i+1:])); len(f) > 19 {
			return f[19]
		}
	}
	return ""
}

// pidNamespace is the inode of this process's PID namespace.
func pidNamespace() string {
	l, err := os.Readlink("/proc/self/ns/pid") // pid:[4026531836]
	if err != nil {
		return "0"
	}
	return strings.TrimSuffix(strings.TrimPrefix(l, "pid:["), "]")
}

// cleanStaleCgroups kills and removes the trees, made in this PID
// namespace, of processes that are gone.
func cleanStaleCgroups(parent string) {
	ns := pidNamespace()
	dirs, _ := filepath.Glob(filepath.Join(parent, "multiexit."+ns+".*.*"))
	for _, d := range dirs {
		f := strings.SplitN(filepath.Base(d), ".", 4)
		if len(f) != 4 || f[1] != ns {
			continue
		}
		pid, err := strconv.Atoi(f[2])
		if err != nil || pid == os.Getpid() || startTime(pid) == f[3] {
			continue // its owner is alive (or it is ours)
		}
		killCgroup(d, time.Second)
	}
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

// entryContainment is one Start entry's share of the tree.
type entryContainment struct {
	tag string // MULTIEXIT_TREE value of its children
	cg  string // its cgroup (LayerCgroup)
}

func newEntryContainment() (*entryContainment, error) {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	if tree.prefix == "" { // Install was not called: process groups only
		return &entryContainment{}, nil
	}
	tree.seq++
	e := &entryContainment{tag: tree.prefix + strconv.Itoa(tree.seq)}
	if tree.layer == LayerCgroup {
		if !tree.made {
			if err := os.Mkdir(tree.root, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return nil, fmt.Errorf("multiexit: Start: the tree's cgroup: %w", err)
			}
			tree.made = true
		}
		e.cg = filepath.Join(tree.root, "e"+strconv.Itoa(tree.seq))
		if err := os.Mkdir(e.cg, 0o755); err != nil {
			return nil, fmt.Errorf("multiexit: Start: cgroup for the children: %w", err)
		}
		if err := ensureGuardian(); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// prepare tags cmd and, in the cgroup layer, starts it straight into the
// entry's cgroup (unless the caller chose a cgroup). It returns what to
// release once the command has started.
func (e *entryContainment) prepare(cmd *exec.Cmd) (release func(), err error) {
	if e.tag == "" {
		return func() {}, nil
	}
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = append(environWithout(env, treeVar), treeVar+"="+e.tag)
	a := cmd.SysProcAttr
	if e.cg == "" || a.UseCgroupFD {
		return func() {}, nil
	}
	fd, err := unix.Open(e.cg, unix.O_DIRECTORY|unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("multiexit: Start: open cgroup %s: %w", e.cg, err)
	}
	a.UseCgroupFD, a.CgroupFD = true, fd
	return func() { unix.Close(fd) }, nil
}

// forkTracked starts cmd and records its PID as one whose status
// exec.Cmd.Wait owns, before the reaper can look at it.
func forkTracked(cmd *exec.Cmd) error {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	if err := startCmd(cmd); err != nil {
		return err
	}
	if tree.tracked != nil {
		tree.tracked[cmd.Process.Pid] = true
	}
	tellGuardian("+" + strconv.Itoa(cmd.Process.Pid))
	return nil
}

func untrack(pid int) {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	delete(tree.tracked, pid)
	tellGuardian("-" + strconv.Itoa(pid))
}

// sweep runs after the entry's children were stopped: whatever of the
// entry is left — descendants that left their process groups — gets
// SIGTERM, up to grace, then SIGKILL (cgroup.kill in the cgroup layer), and
// is reaped. It reports how many it found.
func (e *entryContainment) sweep(grace time.Duration, log func(msg string, args ...any)) {
	if e.cg != "" {
		reapOrphans() // adopt the live ones first
		if left := cgroupProcs(e.cg); len(left) > 0 {
			for _, pid := range left {
				signalInCgroup(pid, e.cg, unix.SIGTERM, unix.SIGCONT)
			}
			if !waitEmpty(e.cg, grace) {
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
	// Orphans that reparented to this process with the entry's tag: in
	// the cgroup layer, only those that moved themselves out of it.
	for range 8 { // each round may orphan the next generation
		left := adoptedWith(e.tag)
		if len(left) == 0 {
			return
		}
		if e.cg != "" {
			log("multiexit: descendants left the entry's cgroup; stopping them by PID", "cgroup", e.cg, "pids", left)
		}
		for _, pid := range left {
			signalAdopted(pid, unix.SIGTERM, unix.SIGCONT)
		}
		end := time.Now().Add(grace)
		for _, pid := range left {
			if !waitPID(pid, time.Until(end)) {
				log("multiexit: orphaned descendant did not stop within the grace period; killing it", "pid", pid)
				signalAdopted(pid, unix.SIGKILL)
				waitPID(pid, 5*time.Second)
			}
		}
	}
}

// adoptedWith scans this process's children and returns the live ones
// tagged tag: orphans of that entry.
func adoptedWith(tag string) []int {
	reapOrphans()
	tree.mu.Lock()
	defer tree.mu.Unlock()
	var pids []int
	for pid, t := range tree.adopted {
		if t == tag {
			pids = append(pids, pid)
		}
	}
	return pids
}

// signalAdopted signals an adopted orphan. It holds the lock the reaper
// needs, so the orphan — this process's child — cannot be reaped, and its
// PID reused, between the check and the signal.
func signalAdopted(pid int, sigs ...unix.Signal) {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	if _, ok := tree.adopted[pid]; !ok {
		return
	}
	for _, sig := range sigs {
		unix.Kill(pid, sig)
	}
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
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	mnt, _ := cgroupMount()
	if err != nil || !bytes.Contains(b, []byte("0::"+strings.TrimPrefix(cg, mnt))) {
		return
	}
	for _, sig := range sigs {
		unix.PidfdSendSignal(fd, sig, nil, 0)
	}
}

// waitPID waits up to d for an adopted child to exit and reaps it.
func waitPID(pid int, d time.Duration) bool {
	end := time.Now().Add(d)
	for s := 100 * time.Microsecond; ; s = min(2*s, 20*time.Millisecond) {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if err != nil || wpid == pid { // reaped, or not ours any more
			tree.mu.Lock()
			delete(tree.adopted, pid)
			tree.mu.Unlock()
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(s)
	}
}

// reaper reaps orphans as they die: a subreaper inherits them.
func reaper() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGCHLD)
	for range ch {
		reapOrphans()
	}
}

// reapOrphans adopts the live orphans that carry one of our tags and reaps
// the dead ones, by explicit PID. It never touches a child whose status
// exec.Cmd.Wait owns, nor (unless this process is PID 1) a child it cannot
// tell is an orphan of the tree.
func reapOrphans() {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	for _, pid := range children() {
		if tree.tracked[pid] {
			continue
		}
		state, ok := procState(pid)
		if !ok {
			continue
		}
		_, adopted := tree.adopted[pid]
		if state != 'Z' {
			if !adopted {
				if tag := envOf(pid, treeVar); strings.HasPrefix(tag, tree.prefix) {
					tree.adopted[pid] = tag
				}
			}
			continue
		}
		switch {
		case adopted || inTree(pid):
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			delete(tree.adopted, pid)
		case tree.pid1 && !tree.lingering[pid]:
			// As PID 1 every zombie is ours to reap, but one may be a
			// child that code of this process is about to Wait for:
			// reap it only if it is still a zombie a second later.
			tree.lingering[pid] = true
			time.AfterFunc(time.Second, func() { reapLingering(pid) })
		}
	}
}

func reapLingering(pid int) {
	tree.mu.Lock()
	defer tree.mu.Unlock()
	delete(tree.lingering, pid)
	if state, ok := procState(pid); ok && state == 'Z' && !tree.tracked[pid] {
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
}

// children lists this process's children (of every thread).
func children() []int {
	var pids []int
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func procState(pid int) (byte, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, false
	}
	return b[i+2], true
}

func envOf(pid int, name string) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return ""
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(name+"=")); ok {
			return string(v)
		}
	}
	return ""
}

// inTree reports whether pid is in this process's tree cgroup.
func inTree(pid int) bool {
	if tree.root == "" {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return false
	}
	own, _ := ownCgroup()
	rel := filepath.Join(own, filepath.Base(tree.root))
	return bytes.Contains(b, []byte("0::"+rel+"/"))
}

// --- The guardian: the tree's last line of defence when this process is
// SIGKILLed. It is this binary re-executed, outside the tree's cgroup, with
// a pipe from this process. Told the PIDs of the direct children, it waits
// for the pipe to close (this process died or finished), gives the direct
// children — which see the death too and run their hooks — up to the
// shutdown deadline to exit, then kills the tree's cgroup and removes it.

const guardianVar = "MULTIEXIT_GUARDIAN"

func ensureGuardian() error {
	if tree.guardian != nil {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("multiexit: Start: guardian: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("multiexit: Start: guardian: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(environWithout(environWithout(os.Environ(), EnvVar), treeVar),
		fmt.Sprintf("%s=%s;%d", guardianVar, tree.root, int64(rt.config().timeout)))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{r}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // not killed by a terminal's Ctrl-C
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return fmt.Errorf("multiexit: Start: guardian: %w", err)
	}
	tree.guardian, tree.guardianProc = w, cmd
	return nil
}

func tellGuardian(line string) {
	if tree.guardian != nil {
		tree.guardian.WriteString(line + "\n")
	}
}

// closeContainment runs at exit, after the hooks: the tree is empty, so
// the guardian only removes the cgroups; it is waited for, so that nothing
// of the tree outlives this process.
func closeContainment() {
	tree.mu.Lock()
	g, proc, root := tree.guardian, tree.guardianProc, tree.root
	tree.guardian = nil
	tree.mu.Unlock()
	if g == nil {
		if root != "" {
			killCgroup(root, time.Second)
		}
		return
	}
	g.Close()
	done := make(chan struct{})
	go func() { proc.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
}

func init() {
	if v, ok := os.LookupEnv(guardianVar); ok {
		os.Exit(guard(v))
	}
}

func guard(v string) int {
	root, timeoutText, _ := strings.Cut(v, ";")
	timeout, _ := strconv.ParseInt(timeoutText, 10, 64)
	if !strings.Contains(filepath.Base(root), "multiexit.") {
		fmt.Fprintf(os.Stderr, "multiexit guardian: %s=%q does not name a multiexit cgroup\n", guardianVar, v)
		return 2
	}
	signal.Ignore(unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	live := map[int]bool{}
	sc := bufio.NewScanner(os.NewFile(3, "multiexit-guardian"))
	for sc.Scan() {
		line := sc.Text()
		if pid, err := strconv.Atoi(line[1:]); err == nil {
			live[pid] = line[0] == '+'
		}
	}
	// The parent is gone. Its direct children see that too and run their
	// hooks; give them the deadline.
	end := time.Now().Add(time.Duration(timeout))
	for pid, alive := range live {
		if alive {
			waitGone(pid, time.Until(end))
		}
	}
	if left := cgroupProcs(root); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "multiexit guardian: parent gone; killing %d processes left in %s\n", len(left), root)
	}
	if err := killCgroup(root, 5*time.Second); err != nil {
		fmt.Fprintf(os.Stderr, "multiexit guardian: %v\n", err)
		return 1
	}
	return 0
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

// empty reports whether nothing of the entry is alive: no process in its
// cgroup, no orphan with its tag.
func (e *entryContainment) empty() bool {
	if e.cg != "" && populated(e.cg) {
		return false
	}
	return e.tag == "" || len(adoptedWith(e.tag)) == 0
}

// init: a worker's ends of the control channel must not leak into what it
// runs before Install; they are close-on-exec from the start.
func init() {
	if r, err := decodeRegistry(childEnv); childEnvSet && err == nil {
		unix.CloseOnExec(int(r.ctl[0]))
		unix.CloseOnExec(int(r.ctl[1]))
	}
}

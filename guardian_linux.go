package multiexit

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The guardian: the tree's last line of defence when this process is
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
	// closeContainment waits for it: its status is exec.Cmd.Wait's.
	tree.tracked[cmd.Process.Pid] = true
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
	g, proc, root, made := tree.guardian, tree.guardianProc, tree.root, tree.made
	tree.guardian = nil
	tree.mu.Unlock()
	if g == nil {
		if root != "" && made {
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

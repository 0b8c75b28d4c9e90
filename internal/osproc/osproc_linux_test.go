package osproc_test

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiexit/multiexit/internal/osproc"
	"github.com/multiexit/multiexit/internal/proctest"
)

// shell returns sh -c script, tagged for the test's check of survivors.
func shell(t *testing.T, script string) *exec.Cmd {
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), proctest.Env(proctest.Tag(t)))
	return cmd
}

// WaitExited returns once the child exited, and leaves its status to
// exec.Cmd.Wait: the child is a zombie until then.
func TestWaitExitedLeavesTheStatus(t *testing.T) {
	cmd := shell(t, "read x; exit 3")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := osproc.StartCmd(cmd); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	exited := make(chan bool, 1)
	go func() { exited <- osproc.WaitExited(pid) }()
	stdin.Close()
	if !<-exited {
		t.Fatal("WaitExited reported that it could not wait")
	}
	if st := proctest.State(pid); st != "Z" {
		t.Errorf("after WaitExited the child is in state %q, want Z (not reaped)", st)
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("Wait: %v, want exit status 3", err)
	}
}

// Prepare gives the child a process group of its own, led by it, and
// Pdeathsig; it keeps a session or a group the caller chose.
func TestPrepare(t *testing.T) {
	cmd := shell(t, "cut -d' ' -f5 /proc/$$/stat")
	if !osproc.Prepare(cmd) {
		t.Error("Prepare: the child does not lead its group")
	}
	if got := cmd.SysProcAttr.Pdeathsig; got != syscall.SIGTERM {
		t.Errorf("Pdeathsig = %v, want SIGTERM", got)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if pgid, _ := strconv.Atoi(strings.TrimSpace(string(out))); pgid != cmd.Process.Pid {
		t.Errorf("the child's group is %q, want its own PID %d", out, cmd.Process.Pid)
	}

	own := exec.Command("true")
	own.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGUSR1}
	if !osproc.Prepare(own) || own.SysProcAttr.Setpgid || own.SysProcAttr.Pdeathsig != syscall.SIGUSR1 {
		t.Errorf("a session leader: %+v", own.SysProcAttr)
	}
	joins := exec.Command("true")
	joins.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: 1}
	if osproc.Prepare(joins) {
		t.Error("a child that joins another group was reported as its leader")
	}
}

// Terminate reaches the whole group of a leader: the shell and the member
// it waits for both end by SIGTERM.
func TestTerminateReachesTheGroup(t *testing.T) {
	cmd := shell(t, "sleep 1000 & echo $!; wait")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	leader := osproc.Prepare(cmd)
	if err := osproc.StartCmd(cmd); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	member, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	fd := proctest.Pidfd(t, member)
	if err := osproc.Terminate(cmd.Process, leader); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if code, sig := osproc.EndOf(cmd.ProcessState); sig != syscall.SIGTERM || code != 128+int(syscall.SIGTERM) {
		t.Errorf("the leader ended with %v (EndOf: %d, %v), want death by SIGTERM", err, code, sig)
	}
	if !proctest.Exited(fd, 10*time.Second) {
		t.Errorf("the member %d of the group is still running", member)
	}
}

func TestEndOf(t *testing.T) {
	if code, sig := osproc.EndOf(nil); code != 1 || sig != nil {
		t.Errorf("EndOf(nil) = %d, %v; want 1, nil", code, sig)
	}
	cmd := shell(t, "exit 3")
	cmd.Run()
	if code, sig := osproc.EndOf(cmd.ProcessState); code != 3 || sig != nil {
		t.Errorf("exit 3: EndOf = %d, %v", code, sig)
	}
	cmd = shell(t, "kill -KILL $$")
	cmd.Run()
	if code, sig := osproc.EndOf(cmd.ProcessState); code != 137 || sig != syscall.SIGKILL {
		t.Errorf("killed: EndOf = %d, %v; want 137, killed", code, sig)
	}
}

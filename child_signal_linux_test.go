package multiexit_test

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/multiexit/multiexit"
)

func init() { scenario(childSignal) }

// childSignal: the test writes one command a line to standard input; the
// child is a shell whose process group also holds a member. Neither traps
// SIGHUP's default action away from the member: a HUP that reached it would
// kill it.
func childSignal([]string) {
	mustInstall(multiexit.WithGrace(200 * time.Millisecond))
	cmd := exec.Command("sh", "-c", `trap 'echo child HUP' HUP; trap 'echo child USR1' USR1
(trap 'echo member USR1' USR1; echo ready member; while :; do sleep 1000 & wait $!; done) &
echo ready child; while :; do sleep 1000 & wait $!; done`)
	cmd.Stdout = os.Stdout
	child := mustStart(cmd)[0]
	say("ready main")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "hup":
			say("Signal(SIGHUP): %v", child.Signal(syscall.SIGHUP))
		case "usr1":
			say("SignalGroup(SIGUSR1): %v", child.SignalGroup(syscall.SIGUSR1))
		case "term":
			say("Signal(SIGTERM): %v", child.Signal(syscall.SIGTERM))
			say("child: %v", child.Wait())
			say("then Signal: %v", child.Signal(syscall.SIGHUP))
			say("then SignalGroup: %v", child.SignalGroup(syscall.SIGHUP))
			multiexit.Exit(0)
		}
	}
	multiexit.Exit(1)
}

// Signal reaches the child alone and SignalGroup its whole group, and
// neither stops it; once it has exited both refuse. The member that
// Signal(SIGTERM) leaves behind is stopped by the entry at Exit.
func TestChildSignal(t *testing.T) {
	var in io.WriteCloser
	p := startWith(t, func(cmd *exec.Cmd) {
		w, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		in = w
	}, childSignal, nil)
	defer in.Close()
	kill := time.AfterFunc(30*time.Second, func() { p.Cmd.Process.Kill() })
	defer kill.Stop()
	send := func(line string) {
		t.Helper()
		if _, err := io.WriteString(in, line+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	p.WaitAll("ready main", "ready child", "ready member")
	send("hup")
	p.WaitAll("Signal(SIGHUP): <nil>", "child HUP")
	send("usr1")
	p.WaitAll("SignalGroup(SIGUSR1): <nil>", "child USR1", "member USR1")
	send("term")
	trace, how := p.end()
	want := []string{
		"Signal(SIGTERM): <nil>",
		"child: signal: terminated",
		"then Signal: os: process already finished",
		"then SignalGroup: os: process already finished",
	}
	if diff := cmp.Diff(want, trace[max(0, len(trace)-len(want)):]); diff != "" || how != exitCode(0) {
		t.Errorf("ended with %s; the end of the trace (-want +got):\n%s\nstderr:\n%s", how, diff, p.Stderr.String())
	}
}

package main_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiexit/multiexit/internal/proctest"
	"github.com/multiexit/multiexit/internal/runctest"
)

// runcCmd runs runc to its end, bounded by limit, and returns its output.
func runcCmd(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	out, err := exec.CommandContext(ctx, "runc", args...).CombinedOutput()
	if err != nil {
		err = fmt.Errorf("runc %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), err
}

// As a runc container's PID 1 (ENTRYPOINT ["multiexit", "--"]): orphans
// are reaped, `runc kill ID TERM` reaches COMMAND, the escapee is stopped
// by multiexit with SIGTERM (it says so) rather than SIGKILLed by the
// kernel when init exits, and the container ends with COMMAND's status.
func TestRuncContainer(t *testing.T) {
	t.Parallel()
	bundle := runctest.Rootfs(t, ".", "sh", "sleep", "echo", "cat", "wc", "setsid", "env")
	tag := proctest.Tag(t)
	script := `f=/tmp/orphans
(sh -c 'echo $$ >>"$0"' "$f" &); (env -i sh -c 'echo $$ >>"$0"' "$f" &)
until [ "$(wc -l <"$f")" = 2 ]; do sleep 0.01; done
for pid in $(cat "$f"); do while [ -e /proc/$pid ]; do sleep 0.01; done; done
echo reaped
setsid sh -c 'trap "echo escapee stopped; exit 0" TERM; echo escapee ready; while :; do sleep 1000 & wait $!; done' &
trap 'echo got TERM; exit 3' TERM
echo ready; while :; do sleep 1000 & wait $!; done`
	runctest.Spec(t, bundle, []string{"/bin/multiexit", "-grace", "5s", "--", "sh", "-c", script}, proctest.Env(tag))

	root, id := filepath.Join(filepath.Dir(bundle), "state"), fmt.Sprintf("multiexit-cmd-test-%d", os.Getpid())
	run := exec.Command("runc", "--root", root, "run", "--bundle", bundle, id)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr proctest.Buffer
	run.Stdout, run.Stderr = w, &stderr
	run.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = run.Start()
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { run.Wait(); close(exited) }()
	guard := time.AfterFunc(limit, func() { r.Close() })
	t.Cleanup(func() {
		guard.Stop()
		select {
		case <-exited:
		default:
			runcCmd("--root", root, "kill", id, "KILL")
			<-exited
		}
		r.Close()
		if out, err := runcCmd("--root", root, "state", id); err == nil {
			t.Errorf("the container is still there after runc run ended (deleted now): %s", out)
			runcCmd("--root", root, "delete", "--force", id)
		}
		if stderr.String() != "" {
			t.Logf("runc run's standard error:\n%s", stderr.String())
		}
	})
	sc := bufio.NewScanner(r)
	var lines []string
	seen := map[string]bool{}
	for _, want := range []string{"reaped", "escapee ready", "ready"} {
		for !seen[want] && sc.Scan() {
			lines = append(lines, sc.Text())
			seen[sc.Text()] = true
		}
		if !seen[want] {
			t.Fatalf("the container never said %q; it said:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	if _, err := runcCmd("--root", root, "kill", id, "TERM"); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	<-exited
	end := lines[len(lines)-2:]
	if end[0] != "got TERM" || end[1] != "escapee stopped" || run.ProcessState.ExitCode() != 3 {
		t.Errorf("the container ended with %d, want 3 after COMMAND's and the escapee's own stop; it said:\n%s\nrunc's stderr:\n%s",
			run.ProcessState.ExitCode(), strings.Join(lines, "\n"), stderr.String())
	}
}

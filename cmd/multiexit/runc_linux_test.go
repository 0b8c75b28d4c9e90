package main_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/multiexit/multiexit/internal/proctest"
	"github.com/multiexit/multiexit/internal/runctest"
)

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

	c := runctest.Run(t, bundle, fmt.Sprintf("multiexit-cmd-test-%d", os.Getpid()), limit)
	c.WaitAll("reaped", "escapee ready", "ready")
	if _, err := c.Runc("kill", c.ID, "TERM"); err != nil {
		t.Fatal(err)
	}
	lines, code := c.End()
	end := lines[len(lines)-2:]
	if end[0] != "got TERM" || end[1] != "escapee stopped" || code != 3 {
		t.Errorf("the container ended with %d, want 3 after COMMAND's and the escapee's own stop; it said:\n%s\nrunc's stderr:\n%s",
			code, strings.Join(lines, "\n"), c.Stderr())
	}
}

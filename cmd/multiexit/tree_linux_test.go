package main_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/multiexit/multiexit/internal/procfs"
	"github.com/multiexit/multiexit/internal/proctest"
)

// freePort returns a TCP port on 127.0.0.1 that nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A test's server, started in the background by a script that then ends,
// is gone when multiexit returns: its port can be bound at once. The
// server also starts a child of its own in a new session (an escapee).
func TestTidyServer(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	port := freePort(t)
	server := fmt.Sprintf(`import http.server, os, subprocess
s = http.server.HTTPServer(("127.0.0.1", %d), http.server.SimpleHTTPRequestHandler)
c = subprocess.Popen(["sleep", "1000"], start_new_session=True)
print("server", os.getpid(), flush=True)
print("its child", c.pid, flush=True)
s.serve_forever()`, port)
	// The script ends when the test says so, once the server listens.
	p := start(t, nil, "-grace", "2s", "--", "sh", "-c", `python3 -c "$1" & read _`, "sh", server)
	p.Watch("server ", "its child ")
	if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
		l.Close()
		t.Fatalf("port %d is free while the server runs", port)
	}
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET / HTTP/1.0\r\n\r\n")
	var b [12]byte
	if n, _ := c.Read(b[:]); !strings.HasPrefix(string(b[:n]), "HTTP/1.0 200") {
		t.Errorf("the server answered %q", b[:n])
	}
	c.Close()
	p.say("done")
	p.check("exit 0")
	p.Gone()
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("port %d cannot be bound when multiexit has returned: %v", port, err)
	}
	l.Close()
}

// escapees makes, beside COMMAND, a process in a new session that ignores
// SIGTERM, a double-forked one, and a member of COMMAND's group that
// ignores SIGTERM; each says its PID. COMMAND then waits for a line on
// its standard input and exits 3.
const escapees = makeEscapees + "read _; exit 3"

const makeEscapees = `setsid sh -c 'trap "" TERM; echo setsid $$; exec sleep 1000' &
(sh -c 'echo double $$; exec sleep 1000' &)
(trap "" TERM; sh -c 'echo stubborn $$; exec sleep 1000') &
`

var escapeeNames = []string{"setsid ", "double ", "stubborn "}

// When COMMAND exits, what it left — escapees and SIGTERM-ignoring
// processes included — is gone when multiexit returns, with COMMAND's
// status.
func TestEscapeesGone(t *testing.T) {
	t.Parallel()
	for _, layer := range []string{"cgroup", "subreaper"} {
		t.Run(layer, func(t *testing.T) {
			t.Parallel()
			p := start(t, []string{"MULTIEXIT_CONTAINMENT=" + layer}, "-v", "-grace", "100ms", "--", "sh", "-c", escapees)
			p.Watch(escapeeNames...)
			p.say("exit")
			p.check("exit 3")
			p.Gone()
			if !strings.Contains(p.Stderr.String(), "containment="+layer) {
				t.Skipf("the %s layer was not taken here:\n%s", layer, p.Stderr.String())
			}
		})
	}
}

// With its standard error a pipe nobody reads (multiexit -- cmd 2>&1 |
// head -1), multiexit's warnings (the grace period ran out) do not kill it
// by SIGPIPE: it still stops what COMMAND left, and exits with COMMAND's
// status.
func TestBrokenStderr(t *testing.T) {
	t.Parallel()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	defer w.Close()
	// Descriptor 3 is the broken pipe; it becomes multiexit's standard
	// error, and its standard output stays the test's.
	cmd := exec.Command("sh", "-c", `exec 2>&3 3>&-; exec "$0" "$@"`, bin, "-grace", "100ms", "--", "sh", "-c", escapees)
	cmd.ExtraFiles = []*os.File{w}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	p := &prog{Proc: proctest.Start(t, cmd, proctest.Options{Limit: limit}), t: t, in: in}
	p.Watch(escapeeNames...)
	p.say("exit")
	p.check("exit 3")
	p.Gone()
}

// -timeout on a tree that ignores SIGTERM: 124, and nothing left. The
// limit leaves the tree time to say it is ready (with 200 ms a loaded
// machine fired it first).
func TestTimeoutStopsStubbornTree(t *testing.T) {
	t.Parallel()
	p := start(t, nil, "-timeout", "3s", "-grace", "100ms", "--", "sh", "-c", `trap "" TERM; `+escapees)
	p.Watch(escapeeNames...)
	p.check("exit 124")
	p.Gone()
}

// SIGKILL of multiexit on the cgroup layer: the guardian takes the whole
// tree, escapees included, down.
func TestSIGKILLTakesTheTree(t *testing.T) {
	t.Parallel()
	p := start(t, nil, "-grace", "100ms", "--", "sh", "-c", `trap "" TERM; `+escapees)
	sigkillTakes(t, p, "setsid ", escapeeNames...)
}

// sigkillTakes watches the processes whose lines begin with names, skips
// the test unless first's is on the cgroup layer, SIGKILLs multiexit and
// checks that every one of them is gone within limit: a bound on a
// failure, not a timing assertion (the guardian gives COMMAND the shutdown
// deadline, two grace periods and 5s).
func sigkillTakes(t *testing.T, p *prog, first string, names ...string) {
	fds := p.Watch(names...)
	if cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", p.WatchedPID(first))); !strings.Contains(string(cg), "/multiexit.") {
		t.Skipf("not on the cgroup layer here: %s", cg)
	}
	p.Signal(syscall.SIGKILL)
	p.check("signal killed")
	for what, fd := range fds {
		if !proctest.Exited(fd, limit) {
			t.Errorf("%s is still running %v after multiexit's SIGKILL", what, limit)
		}
	}
}

// SIGKILL of multiexit on the cgroup layer while its escapees spin on
// every CPU (and ignore SIGTERM): the guardian still starts, beside them,
// and kills them. (The guardian of the command-line tool starts Go only
// then, see guardian_cgo_linux.go: at the priority of multiexit.)
func TestSIGKILLTakesSpinningTree(t *testing.T) {
	t.Parallel()
	spin := ""
	for i := range 2 * runtime.NumCPU() {
		spin += fmt.Sprintf(`setsid sh -c 'trap "" TERM; echo spin%d $$; while :; do :; done' &
`, i)
	}
	names := make([]string, 2*runtime.NumCPU())
	for i := range names {
		names[i] = fmt.Sprintf("spin%d ", i)
	}
	p := start(t, nil, "-grace", "100ms", "--", "sh", "-c", spin+"read _")
	sigkillTakes(t, p, names[0], names...)
}

// On the cgroup layer the guardian of a multiexit built with cgo waits
// before its Go runtime starts (see contain.WaitFirst): while COMMAND
// runs, it has one thread and holds the pipe it waits on, descriptor 5.
func TestGuardianWaitsUnstarted(t *testing.T) {
	t.Parallel()
	needCgo(t)
	p := start(t, nil, "--", "sh", "-c", "echo command $$; read _")
	command := proctest.LastPID(p.WaitFor("command "))
	mx := p.Cmd.Process.Pid
	if cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", command)); !strings.Contains(string(cg), "/multiexit.") {
		t.Skipf("not on the cgroup layer here: %s", cg)
	}
	var guardians []int
	for _, pid := range procfs.Children(mx) {
		if pid != command {
			guardians = append(guardians, pid)
		}
	}
	if len(guardians) != 1 {
		t.Fatalf("multiexit (PID %d) has children %v beside COMMAND (%d), want its guardian alone", mx, guardians, command)
	}
	g := guardians[0]
	if fd5, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/5", g)); !strings.HasPrefix(fd5, "pipe:") {
		t.Errorf("the guardian (PID %d) has no pipe to wait on as descriptor 5 (%q, %v)", g, fd5, err)
	}
	if wd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", g)); wd != "/" {
		t.Errorf("the guardian (PID %d) works in %q (%v), want / (it would keep its directory busy)", g, wd, err)
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", g))
	if !strings.Contains(string(status), "\nThreads:\t1\n") {
		t.Errorf("the guardian (PID %d) has more than one thread: it started Go\n%s", g, status)
	}
	p.say("end")
	p.check("exit 0")
	p.Gone() // the guardian too: it carries the test's tag
}

// As PID 1 (a PID namespace's init) multiexit reaps the orphans that
// reparent to it, tagged or not, and leaves nothing.
func TestPID1ReapsOrphans(t *testing.T) {
	t.Parallel()
	if err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").Run(); err != nil {
		t.Skipf("cannot make a PID namespace: %v", err)
	}
	// Three orphans exit at once, one with an empty environment (no tag
	// says it is the tree's), each after writing its PID to a file; the
	// script waits until each is reaped (gone from /proc), then leaves a
	// sleeping escapee behind.
	script := `f=$1/orphans
(sh -c 'echo $$ >>"$0"' "$f" &); (env -i sh -c 'echo $$ >>"$0"' "$f" &); (sh -c 'echo $$ >>"$0"' "$f" &)
echo "parent $PPID"
until [ "$(wc -l <"$f")" = 3 ]; do sleep 0.01; done
for pid in $(cat "$f"); do while [ -e /proc/$pid ]; do sleep 0.01; done; done
echo "reaped"
setsid sleep 1000 &
exit 4`
	p := startProgram(t, nil, "unshare", "--pid", "--fork", "--mount-proc", bin, "-grace", "100ms", "--", "sh", "-c", script, "sh", t.TempDir())
	if got := p.WaitFor("parent "); got != "parent 1" {
		t.Errorf("COMMAND says %q, want parent 1 (multiexit is PID 1)", got)
	}
	p.WaitFor("reaped")
	p.check("exit 4")
}

// As PID 1, SIGTERM (docker stop, runc kill) reaches COMMAND, and the
// container's init ends with COMMAND's status: 128+signal where COMMAND
// died by it, since init cannot die by its own signal.
func TestPID1SIGTERM(t *testing.T) {
	t.Parallel()
	if err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").Run(); err != nil {
		t.Skipf("cannot make a PID namespace: %v", err)
	}
	for _, tc := range []struct{ name, trap, want string }{
		{"COMMAND exits 3", `trap 'echo got TERM; exit 3' TERM;`, "exit 3"},
		{"COMMAND dies by it", `trap 'echo got TERM; trap - TERM; kill -TERM $$' TERM;`, "exit 143"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startProgram(t, nil, "unshare", "--pid", "--fork", "--mount-proc", bin, "-grace", "100ms", "--",
				"sh", "-c", tc.trap+makeEscapees+`echo ready; while :; do sleep 1000 & wait $!; done`)
			p.WaitAll(append(escapeeNames, "ready")...)
			// unshare's only child is multiexit, PID 1 of the namespace.
			kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p.Cmd.Process.Pid, p.Cmd.Process.Pid))
			var init int
			if _, err2 := fmt.Sscan(string(kids), &init); err != nil || err2 != nil {
				t.Fatalf("unshare's child: %q, %v, %v", kids, err, err2)
			}
			if err := syscall.Kill(init, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			p.WaitFor("got TERM")
			p.check(tc.want)
		})
	}
}

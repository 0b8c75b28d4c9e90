package examples_test

// The examples under the engines that run daemons, the real programs: a
// private systemd manager and runc. Each test skips, saying why, where its
// engine cannot run (not root, a program missing, no writable cgroup v2).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/multiexit/multiexit/internal/cgroupfs"

	"golang.org/x/sys/unix"

	"github.com/multiexit/multiexit/internal/proctest"
	"github.com/multiexit/multiexit/internal/runctest"
)

// engineLimit bounds every wait on an engine: a guard against a hang, far
// above what any step takes on a loaded machine, never a timing claim.
const engineLimit = 60 * time.Second

const systemdBin = "/lib/systemd/systemd"

var engineSeq atomic.Int64

// needPrograms skips t unless it runs as root and every program is there.
func needPrograms(t *testing.T, progs ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the engine needs new namespaces and cgroups")
	}
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed (%v)", p, err)
		}
	}
}

// engineCmd runs a command to its end, bounded by engineLimit, and returns
// its combined output.
func engineCmd(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), engineLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return string(out), err
}

// cgroupV2 returns this process's cgroup v2 directory, or skips t.
func cgroupV2(t *testing.T) string {
	t.Helper()
	mnt := ""
	for _, p := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(p, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			mnt = p
			break
		}
	}
	if mnt == "" {
		t.Skip("no cgroup v2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified")
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skip(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if own, ok := strings.CutPrefix(l, "0::"); ok {
			dir := filepath.Join(mnt, own)
			if unix.Access(dir, unix.W_OK) != nil {
				t.Skipf("cgroup v2 at %s is not writable", dir)
			}
			return dir
		}
	}
	t.Skip("/proc/self/cgroup has no cgroup v2 line")
	return ""
}

// cgroupProcs lists the processes in cg and every cgroup below it.
func cgroupProcs(cg string) []string {
	var pids []string
	filepath.WalkDir(cg, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "cgroup.procs" {
			b, _ := os.ReadFile(path)
			pids = append(pids, strings.Fields(string(b))...)
		}
		return nil
	})
	return pids
}

// systemd is a private systemd manager: PID 1 of new PID, mount and cgroup
// namespaces, in a cgroup of its own, with a unit directory of its own so
// that the machine's units stay out. The units it runs write into dir.
type systemd struct {
	t   *testing.T
	pid int    // the manager, as this process sees it
	cg  string // its cgroup, as this process sees it
	dir string
	tag string // carried by every unit the test starts (proctest)
	// root is where another systemd was extracted (dpkg -x), whose
	// manager, systemctl and systemd-run the test runs; "" for the
	// machine's.
	root string
}

// The manager's units: stubs of the targets it insists on, and the target
// it boots into. None pulls in anything.
var systemdUnits = map[string]string{
	"sysinit.target":  "[Unit]\nDescription=sysinit stub\nDefaultDependencies=no\n",
	"basic.target":    "[Unit]\nDescription=basic stub\nDefaultDependencies=no\n",
	"shutdown.target": "[Unit]\nDescription=shutdown stub\nDefaultDependencies=no\n",
	"multiexit-test.target": "[Unit]\nDescription=multiexit test manager\nDefaultDependencies=no\n" +
		"AllowIsolate=yes\n",
}

// bootScript runs in the new namespaces: $1 is the unit directory, $2 the
// notify socket the manager reports its start to (it sends READY=1 to its
// container manager, which is the test), $3 the manager, $4 its
// LD_LIBRARY_PATH.
const bootScript = `set -e
mount -t proc proc /proc
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmpfs /run
exec env -i container=ci LD_LIBRARY_PATH="$4" SYSTEMD_UNIT_PATH="$1" NOTIFY_SOCKET="$2" "$3" --unit=multiexit-test.target --log-target=kmsg`

// startSystemd starts a manager and waits until it has booted; t's
// cleanup tears it down and checks that nothing it ran is left.
func startSystemd(t *testing.T) *systemd {
	t.Helper()
	return startSystemdFrom(t, "")
}

// startSystemdFrom is startSystemd for the systemd extracted at root ("":
// the machine's).
func startSystemdFrom(t *testing.T, root string) *systemd {
	t.Helper()
	needPrograms(t, systemdBin, "unshare", "nsenter", "systemctl", "systemd-run")
	parent := cgroupV2(t)
	s := &systemd{t: t, dir: t.TempDir(), tag: proctest.Tag(t), root: root}
	s.cg = filepath.Join(parent, fmt.Sprintf("multiexit-test-systemd.%d.%d", os.Getpid(), engineSeq.Add(1)))
	if err := os.Mkdir(s.cg, 0o755); err != nil {
		t.Skipf("cannot make a cgroup for the manager: %v", err)
	}
	units := filepath.Join(s.dir, "units")
	os.Mkdir(units, 0o755)
	for name, text := range systemdUnits {
		if err := os.WriteFile(filepath.Join(units, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ns := proctest.ListenNotify(t)
	cgfd, err := unix.Open(s.cg, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(cgfd)
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount", "--propagation", "private",
		"--uts", "--ipc", "--cgroup", "--kill-child", "sh", "-c", bootScript, "sh", units, ns.Path, s.bin("/lib/systemd/systemd"), s.libs())
	var out proctest.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// In its own cgroup from the start: the new cgroup namespace is rooted
	// there. If this test process dies, unshare and so the manager die.
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cgfd, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		cgroupfs.RemoveTree(s.cg)
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { s.teardown(cmd, exited) })

	guard := time.NewTimer(engineLimit)
	defer guard.Stop()
	for ready := false; !ready; {
		select {
		case m := <-ns.Messages():
			ready = slices.Contains(strings.Split(m, "\n"), "READY=1")
		case <-exited:
			t.Skipf("the private systemd manager did not start: %v\n%s", cmd.ProcessState, out.String())
		case <-guard.C:
			t.Fatalf("the private systemd manager did not report READY=1 within %v\n%s", engineLimit, out.String())
		}
	}
	// unshare's one child, which became the manager.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
	if err == nil {
		s.pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if err != nil {
		t.Fatalf("the manager's PID: %q: %v", b, err)
	}
	return s
}

// teardown ends the manager (systemctl --force exit; its PID namespace
// ends with it), or, past engineLimit, kills its cgroup: everything in it
// was started by this test. Nothing may be left in the cgroup.
func (s *systemd) teardown(cmd *exec.Cmd, exited <-chan struct{}) {
	t := s.t
	if s.pid != 0 {
		if _, err := s.ctl(t, "systemctl", "--force", "exit"); err != nil {
			t.Log(err)
		}
	}
	select {
	case <-exited:
	case <-time.After(engineLimit):
		t.Errorf("the manager did not exit within %v of systemctl --force exit; killing its cgroup", engineLimit)
		os.WriteFile(filepath.Join(s.cg, "cgroup.kill"), []byte("1"), 0)
		<-exited
	}
	if left := cgroupProcs(s.cg); len(left) > 0 {
		t.Errorf("processes left in the manager's cgroup after it exited (killed now): %v", left)
		os.WriteFile(filepath.Join(s.cg, "cgroup.kill"), []byte("1"), 0)
	}
	if err := cgroupfs.RemoveTree(s.cg); err != nil {
		t.Errorf("removing the manager's cgroup: %v", err)
	}
}

// ctl runs a command (systemctl, systemd-run) in the manager's mount and
// PID namespaces.
func (s *systemd) ctl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if s.root != "" {
		switch args[0] {
		case "systemctl":
			args = append([]string{"env", "LD_LIBRARY_PATH=" + s.libs(), s.bin("/bin/systemctl")}, args[1:]...)
		case "systemd-run":
			args = append([]string{"env", "LD_LIBRARY_PATH=" + s.libs(), s.bin("/usr/bin/systemd-run")}, args[1:]...)
		}
	}
	return engineCmd(t, "nsenter", append([]string{"-t", strconv.Itoa(s.pid), "-m", "-p"}, args...)...)
}

// bin is the path of a program of the manager's systemd.
func (s *systemd) bin(path string) string { return filepath.Join(s.root, path) }

// libs is the LD_LIBRARY_PATH its programs need ("" for the machine's).
func (s *systemd) libs() string {
	if s.root == "" {
		return ""
	}
	return filepath.Join(s.root, "usr/lib/x86_64-linux-gnu/systemd")
}

// unit is a transient service run by the manager.
type unit struct {
	t                 *testing.T
	s                 *systemd
	name              string
	out, result, left string // files: its output, its outcome, what was left at its end
}

// runUnit starts a transient service running args; systemd-run returns
// once the start job is done (for Type=notify: once READY=1 came). The
// unit records its outcome and the test's processes still alive once its
// main process has ended (those systemd would then kill) in files.
func (s *systemd) runUnit(t *testing.T, props []string, args ...string) (*unit, error) {
	return s.runSocketUnit(t, nil, props, args...)
}

// runSocketUnit is runUnit with, if sockProps is not empty, a socket unit
// of the same name with those properties (socket activation): systemd-run
// returns once the socket listens, and the service starts at the first
// connection.
func (s *systemd) runSocketUnit(t *testing.T, sockProps, props []string, args ...string) (*unit, error) {
	u := &unit{t: t, s: s, name: fmt.Sprintf("mx-%d", engineSeq.Add(1))}
	u.out = filepath.Join(s.dir, u.name+".out")
	u.result = filepath.Join(s.dir, u.name+".result")
	u.left = filepath.Join(s.dir, u.name+".left")
	// env -u: the recording shell must not count itself.
	stopPost := fmt.Sprintf(`/usr/bin/env -u %s /bin/sh -c "echo $SERVICE_RESULT $EXIT_CODE $EXIT_STATUS >%s; grep -l -a -s -F %s /proc/[0-9]*/environ >%s; true"`,
		proctest.TagVar, u.result, proctest.Env(s.tag), u.left)
	cmd := []string{"systemd-run", "--unit=" + u.name, "--quiet",
		"-p", "TimeoutStartSec=" + (engineLimit / 2).String(),
		"-p", "StandardOutput=file:" + u.out, "-p", "StandardError=file:" + u.out,
		"-p", "ExecStopPost=" + stopPost,
		"-E", proctest.Env(s.tag), "-E", "GORACE=atexit_sleep_ms=0"}
	for _, p := range props {
		cmd = append(cmd, "-p", p)
	}
	for _, p := range sockProps {
		cmd = append(cmd, "--socket-property="+p)
	}
	_, err := s.ctl(t, append(cmd, args...)...)
	return u, err
}

// output is what the unit wrote, line by line.
func (u *unit) output() []string {
	b, _ := os.ReadFile(u.out)
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// stop runs systemctl stop, which returns once the unit has stopped, and
// checks what systemd recorded: Result=success and the main process killed
// by SIGTERM, nothing of the test left when the main process ended (so
// systemd's final SIGKILL had nothing to kill), and the unit's cgroup gone
// or empty.
func (u *unit) stop() {
	t := u.t
	t.Helper()
	if _, err := u.s.ctl(t, "systemctl", "stop", u.name); err != nil {
		t.Fatal(err)
	}
	result, err := os.ReadFile(u.result)
	if err != nil {
		t.Fatalf("the unit's ExecStopPost did not record its result: %v\noutput:\n%s", err, strings.Join(u.output(), "\n"))
	}
	if got := strings.TrimSpace(string(result)); got != "success killed TERM" {
		t.Errorf("SERVICE_RESULT EXIT_CODE EXIT_STATUS = %q, want %q\noutput:\n%s", got, "success killed TERM", strings.Join(u.output(), "\n"))
	}
	if left, err := os.ReadFile(u.left); err != nil || len(left) > 0 {
		t.Errorf("processes of the unit alive after its main process ended: %q, %v", left, err)
	}
	cg := filepath.Join(u.s.cg, "system.slice", u.name+".service")
	if left := cgroupProcs(cg); len(left) > 0 {
		t.Errorf("the unit's cgroup %s still holds %v", cg, left)
	}
}

// everyoneAtOnce undoes what KillMode=control-group changes in the demo's
// timeline, so that checkWorkerpool checks the rest. systemd sends SIGTERM
// to every process of the unit at once, so the workers may print their
// first hook, and the parent may report sh (which dies of it) stopped,
// before the parent prints the TIMELINE header, "shutdown begins" and
// "status server closed"; and sh's end may even be what ends the parent's
// run group (cause "signal: terminated") before its own SIGTERM does. The
// header and those two lines are moved to the top of the timeline.
func everyoneAtOnce(lines []string) []string {
	header := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "TIMELINE") })
	first := slices.IndexFunc(lines, timelineRE.MatchString)
	if header < 0 || first < 0 {
		return lines
	}
	first = min(first, header)
	var top, rest []string
	for _, l := range lines[first:] {
		switch {
		case strings.HasPrefix(l, "TIMELINE"):
			top = slices.Insert(top, 0, l)
		case strings.Contains(l, "shutdown begins: "):
			top = append(top, strings.Replace(l, "shutdown begins: signal: terminated", "shutdown begins: received signal terminated", 1))
		case strings.HasSuffix(l, "status server closed"):
			top = append(top, l)
		default:
			rest = append(rest, l)
		}
	}
	return slices.Concat(lines[:first], top, rest)
}

// The demo as a Type=notify unit: systemd-run returns once it is ready,
// and systemctl stop is a clean stop with every hook run in order.
func TestSystemd(t *testing.T) {
	s := startSystemd(t)
	for _, mode := range []string{"control-group", "mixed"} {
		t.Run("workerpool KillMode="+mode, func(t *testing.T) {
			u, err := s.runUnit(t, []string{"Type=notify", "KillMode=" + mode}, filepath.Join(bin, "workerpool"), "-serve")
			if err != nil {
				t.Fatalf("%v\nthe unit's output:\n%s", err, strings.Join(u.output(), "\n"))
			}
			// systemd-run returned: READY=1 came, after Start returned.
			if out := u.output(); !slices.ContainsFunc(out, func(l string) bool {
				return strings.HasPrefix(l, "parent (pid ") && strings.Contains(l, "started 3 workers")
			}) {
				t.Errorf("systemd-run returned before the workers were started; output:\n%s", strings.Join(out, "\n"))
			}
			if st, err := s.ctl(t, "systemctl", "show", "-p", "ActiveState", "-p", "SubState", u.name); err != nil || st != "ActiveState=active\nSubState=running\n" {
				t.Errorf("after systemd-run: %q, %v", st, err)
			}
			u.stop()
			lines := u.output()
			if mode == "control-group" {
				lines = everyoneAtOnce(lines)
			}
			checkWorkerpool(t, lines, "received signal terminated")
		})
	}
	t.Run("cascade KillMode=control-group, a slow leaf", func(t *testing.T) {
		// systemd sends SIGTERM to every process of the unit at once:
		// every worker begins its shutdown with its own 20 s deadline, and
		// worker 3's slow hook would keep it all; main stops worker 1 from
		// its place (a hook above the Start entry runs first) with a grace
		// of 5 s, and each level must pass the shorter time on.
		u, err := s.runUnit(t, []string{"Type=notify", "KillMode=control-group"}, filepath.Join(bin, "cascade"), "-serve", "-slow")
		if err != nil {
			t.Fatalf("%v\nthe unit's output:\n%s", err, strings.Join(u.output(), "\n"))
		}
		u.stop()
		checkCascadeAllAtOnce(t, u.output())
	})
	t.Run("a hook longer than TimeoutStopSec, inside WithTimeout", func(t *testing.T) {
		u, err := s.runUnit(t, []string{"Type=notify", "KillMode=mixed", "TimeoutStopSec=2s"},
			filepath.Join(bin, "hooks"), "-wait", "-slow", "4s")
		if err != nil {
			t.Fatalf("%v\nthe unit's output:\n%s", err, strings.Join(u.output(), "\n"))
		}
		u.stop()
		diff(t, "the hooks", []string{
			"main: received signal terminated",
			"hook 3: remove the pid file (takes 4s)",
			"hook 3: remove the pid file",
			"hook 2: flush the log",
			"hook 1: close the database",
		}, after(u.output(), "ready: pid"))
	})
}

// Socket activation (issue 19): the listener systemd opened for a .socket
// unit with FileDescriptorName=http reaches prefork's workers, a restarted
// one included. systemd-run starts the socket only; the first connection
// starts the service, and waits in the socket's queue until a worker
// accepts it.
func TestSystemdSocketActivation(t *testing.T) {
	s := startSystemd(t)
	sock := filepath.Join(s.dir, "http.sock")
	u, err := s.runSocketUnit(t, []string{"ListenStream=" + sock, "FileDescriptorName=http"},
		[]string{"Type=notify", "KillMode=mixed"}, filepath.Join(bin, "prefork"), "-workers", "1", "-addr", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("%v\nthe unit's output:\n%s", err, strings.Join(u.output(), "\n"))
	}
	if st, err := s.ctl(t, "systemctl", "show", "-p", "ActiveState", u.name+".service"); err != nil || st != "ActiveState=inactive\n" {
		t.Errorf("before the first connection the service is %q, %v; want inactive", st, err)
	}
	c := &http.Client{Timeout: engineLimit / 2, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := c.Get("http://prefork" + path)
		if err != nil {
			t.Fatalf("GET %s on %s: %v\nthe unit's output:\n%s", path, sock, err, strings.Join(u.output(), "\n"))
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: reading the body: %v", path, err)
		}
		return resp.StatusCode, string(b)
	}
	code, body := get("/")
	m := preforkBody.FindStringSubmatch(body)
	if code != 200 || m == nil {
		t.Fatalf("GET /: %d %q", code, body)
	}
	first := m[1]
	// The worker may answer before the parent printed "listening on":
	// Start returns once every worker called Run, and systemd's socket
	// was listening all along. The parent prints it before READY=1, and
	// systemctl start returns once the start job (queued by the first
	// connection) is done, which for Type=notify is at READY=1.
	if _, err := s.ctl(t, "systemctl", "start", u.name+".service"); err != nil {
		t.Fatalf("waiting for the service's READY=1: %v", err)
	}
	if out := u.output(); !slices.Contains(out, "listening on "+sock) {
		t.Errorf("prefork did not adopt systemd's socket (want %q); output:\n%s", "listening on "+sock, strings.Join(out, "\n"))
	}
	if code, body := get("/crash"); code != 200 || body != "crashing" {
		t.Fatalf("GET /crash: %d %q", code, body)
	}
	// The crashing worker may still serve a connection it accepted before
	// it closed its listener; then only the restarted one accepts.
	var next string
	for range 100 {
		code, body := get("/")
		m := preforkBody.FindStringSubmatch(body)
		if code != 200 || m == nil {
			t.Fatalf("GET / after the crash: %d %q", code, body)
		}
		if m[1] != first {
			next = m[1]
			break
		}
	}
	if next == "" {
		t.Fatalf("100 requests after the crash all answered by the crashed worker %s; output:\n%s", first, strings.Join(u.output(), "\n"))
	}
	u.stop()
	out := u.output()
	if !slices.Contains(out, "worker "+next+" generation 1: hooks done") || slices.Contains(out, "worker "+first+" generation 1: hooks done") {
		t.Errorf("want the hooks of the restarted worker %s (and not of the crashed %s); output:\n%s", next, first, strings.Join(out, "\n"))
	}
}

// checkCascadeAllAtOnce checks the hooks of cascade -serve -slow stopped
// all at once: every hook of every level ran, each level's in order, and
// each level's last after its worker's.
func checkCascadeAllAtOnce(t *testing.T, out []string) {
	t.Helper()
	numbered := regexp.MustCompile(`^ *\d+\. (.*)$`)
	var hooks []string
	for _, l := range out {
		if m := numbered.FindStringSubmatch(l); m != nil {
			hooks = append(hooks, m[1])
		}
	}
	levels := map[string][]string{
		"main": {"main: stopping worker 1", "main: worker 1 has stopped (signal: terminated)", "main: goodbye from the cascade"},
		"1":    {"worker 1: stopping worker 2", "worker 1: worker 2 has stopped (signal: terminated)", "worker 1: goodbye from the cascade"},
		"2":    {"worker 2: stopping worker 3", "worker 2: worker 3 has stopped (signal: terminated)", "worker 2: goodbye from the cascade"},
		"3": {"worker 3: slow hook: waits until its context ends", "worker 3: slow hook: its context ended",
			"worker 3: own hook", "worker 3: goodbye from the cascade"},
	}
	for level, want := range levels {
		var got []string
		for _, h := range hooks {
			if slices.Contains(want, h) {
				got = append(got, h)
			}
		}
		diff(t, "the hooks of level "+level, want, got)
	}
	// Leaves first: a level's worker has said goodbye before the level
	// says it stopped.
	for _, pair := range [][2]string{
		{"worker 3: goodbye from the cascade", "worker 2: worker 3 has stopped (signal: terminated)"},
		{"worker 2: goodbye from the cascade", "worker 1: worker 2 has stopped (signal: terminated)"},
		{"worker 1: goodbye from the cascade", "main: worker 1 has stopped (signal: terminated)"},
	} {
		if i, j := slices.Index(hooks, pair[0]), slices.Index(hooks, pair[1]); i < 0 || j < 0 || i > j {
			t.Errorf("%q is not before %q:\n%s", pair[0], pair[1], strings.Join(out, "\n"))
		}
	}
	if len(hooks) != 13 {
		t.Errorf("%d hook lines, want 13:\n%s", len(hooks), strings.Join(out, "\n"))
	}
}

// startContainer builds the demo without cgo, makes a rootfs of it and
// busybox (its links relative, so that they resolve inside), and starts
// `runc run` in the foreground: it exits with the container's status.
func startContainer(t *testing.T, args ...string) *runctest.Container {
	t.Helper()
	needPrograms(t, "runc")
	bundle := runctest.Rootfs(t, "./workerpool", "sh", "sleep", "echo", "cat")
	tag := proctest.Tag(t)
	runctest.Spec(t, bundle, append([]string{"/bin/workerpool"}, args...), proctest.Env(tag))
	// The demo's run directory is in /tmp: the root is writable.

	return runctest.Run(t, bundle, fmt.Sprintf("multiexit-test-%d-%d", os.Getpid(), engineSeq.Add(1)), engineLimit)
}

// initPID is the host PID of the container's PID 1.
func initPID(t *testing.T, c *runctest.Container) int {
	t.Helper()
	out, err := c.Runc("state", c.ID)
	var st struct{ Pid int }
	if err == nil {
		err = json.Unmarshal([]byte(out), &st)
	}
	if err != nil || st.Pid == 0 {
		t.Fatalf("runc state: %v %q", err, out)
	}
	return st.Pid
}

// childWithNSpid is the host PID of the child of pid whose PID in its own
// (innermost) PID namespace is nsPID, or 0.
func childWithNSpid(pid int, nsPID string) int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, f := range strings.Fields(string(b)) {
			st, _ := os.ReadFile("/proc/" + f + "/status")
			for l := range strings.Lines(string(st)) {
				if ids, ok := strings.CutPrefix(l, "NSpid:"); ok {
					if ids := strings.Fields(ids); len(ids) > 0 && ids[len(ids)-1] == nsPID {
						n, _ := strconv.Atoi(f)
						return n
					}
				}
			}
		}
	}
	return 0
}

// The demo as a container's PID 1 under runc: orphans a shell leaves are
// reaped, `runc kill ID TERM` runs every hook in order, the container
// ends with 143 (PID 1 cannot die of its own signal), and nothing of it
// is left.
func TestRunc(t *testing.T) {
	c := startContainer(t, "-serve")
	c.WaitFor("serving status on ")
	init := initPID(t, c)

	// A shell that leaves two orphans, which are PID 1's children once it
	// has exited (runc exec returns then): one that lives on, and one, whose
	// PID the shell says after forking it, that the test kills: PID 1 must
	// reap its zombie. (An orphan that died by itself might die after a
	// check for zombies, or be reaped by the shell: the check would prove
	// nothing.)
	out, err := c.Runc("exec", c.ID, "sh", "-c", "sleep 1000 </dev/null >/dev/null 2>&1 & sleep 1000 </dev/null >/dev/null 2>&1 & echo started $!")
	nsPID, ok := strings.CutPrefix(strings.TrimSuffix(out, "\n"), "started ")
	if err != nil || !ok {
		t.Fatalf("runc exec: %q, %v", out, err)
	}
	orphan := childWithNSpid(init, nsPID)
	if orphan == 0 {
		t.Fatalf("the orphan (container PID %s) is not a child of the container's PID 1 (%d)", nsPID, init)
	}
	fd := proctest.Pidfd(t, orphan)
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
		t.Fatal(err)
	}
	// Its zombie is reachable through the pidfd until PID 1 reaps it
	// (then ESRCH). As PID 1 the demo reaps an unclaimed zombie a moment
	// after it appeared: wait for that, bounded (a guard, not a timing
	// claim).
	for guard := time.Now().Add(engineLimit); unix.PidfdSendSignal(fd, 0, nil, 0) == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(guard) {
			t.Fatalf("the orphan %d (container PID %s), killed, not reaped by the container's PID 1 within %v", orphan, nsPID, engineLimit)
		}
	}

	if out, err := c.Runc("kill", c.ID, "TERM"); err != nil {
		t.Fatal(err, out)
	}
	lines, code := c.End()
	if code != 143 {
		t.Errorf("runc run ended with %d, want 143 (128+SIGTERM: a PID 1 cannot die of its own signal)\noutput:\n%s", code, strings.Join(lines, "\n"))
	}
	checkWorkerpool(t, lines, "received signal terminated")
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", init)); err == nil {
		t.Errorf("the container's PID 1 (%d) is still there", init)
	}
}

// environ is the environment of a live process, entry by entry.
func environ(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(b), "\x00")
}

// pidAfter finds "(pid N)" after the first occurrence of marker in the
// lines.
func pidAfter(t *testing.T, lines []string, marker string) int {
	t.Helper()
	for _, l := range lines {
		if _, rest, ok := strings.Cut(l, marker); ok {
			if _, rest, ok = strings.Cut(rest, "(pid "); ok {
				if n, err := strconv.Atoi(rest[:max(0, strings.IndexByte(rest, ')'))]); err == nil {
					return n
				}
			}
		}
	}
	t.Fatalf("no line with %q…(pid N) in:\n%s", marker, strings.Join(lines, "\n"))
	return 0
}

// The demo under a service manager's notify socket (a fake one; TestSystemd
// runs the real one): READY=1 once every worker has acknowledged, and only
// then; STOPPING=1 with EXTEND_TIMEOUT_USEC (the demo's WithTimeout, 8 s,
// and the margin) when the shutdown begins; neither the workers nor the
// external command inherit NOTIFY_SOCKET, so only the parent speaks.
func TestNotifySocket(t *testing.T) {
	ns := proctest.ListenNotify(t)
	t.Setenv("NOTIFY_SOCKET", ns.Path)
	p := start(t, "workerpool", "-serve")
	p.WaitFor("serving status on ")
	diff(t, "messages before serving", []string{"READY=1"}, ns.Until(t, "READY=1", limit))
	pids := []int{pidAfter(t, p.Seen, "parent "), pidAfter(t, p.Seen, "workers and sh ")}
	for i := 1; i <= 3; i++ {
		pids = append(pids, pidAfter(t, p.Seen, fmt.Sprintf("worker %d ", i)))
	}
	for i, pid := range pids {
		env := environ(t, pid)
		if !slices.Contains(env, "GORACE=atexit_sleep_ms=0") { // set by start
			t.Errorf("pid %d: not the example's? environment %q", pid, env)
		}
		has := slices.Contains(env, "NOTIFY_SOCKET="+ns.Path)
		if i == 0 && !has {
			t.Errorf("the parent (pid %d) lost NOTIFY_SOCKET", pid)
		}
		if i > 0 && has {
			t.Errorf("child pid %d inherited NOTIFY_SOCKET", pid)
		}
	}
	p.Signal(syscall.SIGTERM)
	p.end()
	msgs := ns.Until(t, "STOPPING=1", limit)
	first := strings.Split(msgs[0], "\n")
	diff(t, "the shutdown's first message", []string{"STOPPING=1", "EXTEND_TIMEOUT_USEC=9000000"}, first[:min(2, len(first))])
}

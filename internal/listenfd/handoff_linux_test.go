package listenfd_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/multiexit/multiexit/internal/listenfd"
	"github.com/multiexit/multiexit/internal/proctest"
)

// twoSockets opens the tests' pair: TCP on a port the kernel picks, and a
// Unix socket in a temporary directory.
func twoSockets(t *testing.T) []*listenfd.Socket {
	return []*listenfd.Socket{
		openT(t, "web", "tcp", "127.0.0.1:0"),
		openT(t, "admin", "unix", filepath.Join(t.TempDir(), "admin.sock")),
	}
}

// readyLine checks the process's "ready" line against want, a regular
// expression in which {pid} stands for the process's PID.
func readyLine(t *testing.T, p *proctest.Proc, want string) {
	t.Helper()
	line := p.WaitFor("ready")
	re := regexp.MustCompile("^" + strings.ReplaceAll(want, "{pid}", fmt.Sprint(p.Cmd.Process.Pid)) + "$")
	if !re.MatchString(line) {
		t.Fatalf("ready line %q does not match %q\nstderr:\n%s", line, re, p.Stderr.String())
	}
}

func TestPassToGoWorker(t *testing.T) {
	socks := twoSockets(t)
	// The caller's own ExtraFiles entry moves from 3 to 3+2.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := scenarioCmd("goServe", "-extra=5", "web", "admin")
	cmd.ExtraFiles = []*os.File{w}
	p := startPassed(t, cmd, socks, listenfd.GoWorker)
	w.Close()
	readyLine(t, p, `ready pid={pid} LISTEN_PID={pid} names=web,admin marker="" fd3=socket,cloexec fd4=socket,cloexec`)
	if line, err := bufio.NewReader(r).ReadString('\n'); line != "extra\n" {
		t.Errorf("the caller's ExtraFiles[0], expected at descriptor 5, gave %q, %v", line, err)
	}
	for _, s := range socks {
		if got, want := greet(t, s), fmt.Sprintf("hello from %s pid %d", s.Name(), p.Cmd.Process.Pid); got != want {
			t.Errorf("%v: got %q, want %q", s, got, want)
		}
	}
	_, how := p.End()
	p.Ended(how, "exit 0")
}

func TestPassThroughShimToC(t *testing.T) {
	bin := cProgram(t)
	socks := twoSockets(t)
	p := startPassed(t, exec.Command(bin, "serve"), socks, listenfd.AnyProgram)
	// The shim executed the C program in the process the test started:
	// LISTEN_PID is that process's PID, which sd_listen_fds checks.
	readyLine(t, p, `ready pid={pid} names=web,admin fd3=socket,listening,blocking fd4=socket,listening,blocking`)
	for _, s := range socks {
		if got, want := greet(t, s), fmt.Sprintf("hello from %s pid %d", s.Name(), p.Cmd.Process.Pid); got != want {
			t.Errorf("%v: got %q, want %q", s, got, want)
		}
	}
	_, how := p.End()
	p.Ended(how, "exit 0")
	p.Quiet()
}

// TestGoSystemdFindsThem: go-systemd's activation package, the reference,
// finds the sockets by name in a Go worker (LISTEN_PID set by Receive)
// and in a Go program that is not a worker (set by the shim).
func TestGoSystemdFindsThem(t *testing.T) {
	for name, recv := range map[string]listenfd.Receiver{"GoWorker": listenfd.GoWorker, "AnyProgram": listenfd.AnyProgram} {
		t.Run(name, func(t *testing.T) {
			socks := twoSockets(t)
			p := startPassed(t, scenarioCmd("oracle", "web", "admin"), socks, recv)
			readyLine(t, p, `ready pid={pid} LISTEN_PID={pid} go-systemd=admin,web`)
			for _, s := range socks {
				if got, want := greet(t, s), fmt.Sprintf("oracle %s pid %d", s.Name(), p.Cmd.Process.Pid); got != want {
					t.Errorf("%v: got %q, want %q", s, got, want)
				}
			}
			_, how := p.End()
			p.Ended(how, "exit 0")
		})
	}
}

// TestAdoptFromSystemd: a parent started as systemd starts a
// socket-activated service (the test plays systemd: descriptors 3 and 4,
// LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID set to the child's PID) adopts
// the sockets, takes the variables out of its environment, closes its
// passed descriptors, and hands the sockets on to a worker that serves.
func TestAdoptFromSystemd(t *testing.T) {
	socks := twoSockets(t)
	cmd := scenarioCmd("adopter", "web", "admin")
	cmd.ExtraFiles = []*os.File{listenfd.FileOf(socks[0]), listenfd.FileOf(socks[1])}
	cmd.Env = append(cmd.Env, "LISTEN_FDS=2", "LISTEN_FDNAMES=web:admin", fakeSystemdVar+"=1")
	p := proctest.Start(t, cmd, proctest.Options{Limit: 60e9})
	if got, want := p.WaitFor("adopted web"), "adopted web tcp4 "+socks[0].Addr(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := p.WaitFor("adopted admin"), "adopted admin unix "+socks[1].Addr(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := p.WaitFor("environment"), `environment after Adopt: []; fd3=closed fd4=closed`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// The worker's LISTEN_PID is its own PID, not the adopter's.
	m := regexp.MustCompile(`^ready pid=([0-9]+) LISTEN_PID=([0-9]+) names=web,admin marker="" fd3=socket,cloexec fd4=socket,cloexec$`).FindStringSubmatch(p.WaitFor("ready"))
	if m == nil || m[1] != m[2] || m[1] == fmt.Sprint(p.Cmd.Process.Pid) {
		t.Fatalf("the worker's ready line: %q", p.Seen[len(p.Seen)-1])
	}
	for _, s := range socks {
		if got, want := greet(t, s), "hello from "+s.Name()+" pid "+m[1]; got != want {
			t.Errorf("%v: got %q, want %q", s, got, want)
		}
	}
	_, how := p.End()
	p.Ended(how, "exit 0")
}

// TestBadInputs: what Parse and File say of variables that are wrong.
// Each case runs in a child that gets descriptors and variables as a
// service manager would give them.
func TestBadInputs(t *testing.T) {
	web := openT(t, "web", "tcp", "127.0.0.1:0")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	// A connected stream socket: a socket, but not a listening one.
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := os.NewFile(uintptr(pair[0]), "conn")
	defer conn.Close()
	defer unix.Close(pair[1])
	self := fmt.Sprint(os.Getpid())
	for _, tc := range []struct {
		name  string
		files []*os.File
		env   []string
		ask   []string
		want  []string
	}{
		{"LISTEN_PID of another process", []*os.File{listenfd.FileOf(web)}, []string{"LISTEN_PID=" + self, "LISTEN_FDS=1", "LISTEN_FDNAMES=web"}, []string{"web"}, []string{
			`parse: names= ignored="LISTEN_PID=` + self + ` names another process than this one (PID)"`,
			`file error: listener "web": no descriptors for this process: LISTEN_PID=` + self + ` names another process than this one (PID)`,
		}},
		{"LISTEN_PID not a number", nil, []string{"LISTEN_PID=me", "LISTEN_FDS=1"}, nil, []string{
			`parse error: LISTEN_PID="me" is not a process ID`,
		}},
		{"LISTEN_FDS not a number", []*os.File{listenfd.FileOf(web)}, []string{fakeSystemdVar + "=1", "LISTEN_FDS=one"}, nil, []string{
			`parse error: LISTEN_FDS="one" is not a number`,
		}},
		{"LISTEN_FDS zero", nil, []string{fakeSystemdVar + "=1", "LISTEN_FDS=0"}, nil, []string{
			`parse error: LISTEN_FDS=0: want from 1 to 65536 descriptors`,
		}},
		// (The Go runtime of the child holds a few descriptors after 3.)
		{"descriptor not open", []*os.File{listenfd.FileOf(web)}, []string{fakeSystemdVar + "=1", "LISTEN_FDS=1000"}, nil, []string{
			`re:parse error: descriptor [0-9]+ of LISTEN_FDS=1000: fcntl: bad file descriptor`,
		}},
		{"a pipe", []*os.File{listenfd.FileOf(web), pw}, []string{fakeSystemdVar + "=1", "LISTEN_FDS=2", "LISTEN_FDNAMES=web:logs"}, []string{"web", "logs"}, []string{
			`parse: names=web,logs ignored=""`,
			`file web: ok`,
			`file error: descriptor 4 ("logs"): not a socket (a pipe)`,
		}},
		{"not listening", []*os.File{conn}, []string{fakeSystemdVar + "=1", "LISTEN_FDS=1", "LISTEN_FDNAMES=conn"}, []string{"conn"}, []string{
			`parse: names=conn ignored=""`,
			`file error: descriptor 3 ("conn"): a connection-mode socket that is not listening`,
		}},
		{"fewer names than descriptors", []*os.File{listenfd.FileOf(web), pw}, []string{fakeSystemdVar + "=1", "LISTEN_FDS=2", "LISTEN_FDNAMES=web"}, nil, []string{
			`parse error: LISTEN_FDNAMES="web" has 1 names for LISTEN_FDS=2`,
		}},
		{"a name not passed", []*os.File{listenfd.FileOf(web)}, []string{fakeSystemdVar + "=1", "LISTEN_FDS=1", "LISTEN_FDNAMES=web"}, []string{"api"}, []string{
			`parse: names=web ignored=""`,
			`file error: listener "api": not passed (LISTEN_FDNAMES=web)`,
		}},
		{"one name twice", []*os.File{listenfd.FileOf(web), listenfd.FileOf(web)}, []string{fakeSystemdVar + "=1", "LISTEN_FDS=2", "LISTEN_FDNAMES=web:web"}, []string{"web"}, []string{
			`parse: names=web,web ignored=""`,
			`file error: listener "web": the name is passed for descriptors 3 and 4`,
		}},
		{"no names", []*os.File{listenfd.FileOf(web)}, []string{fakeSystemdVar + "=1", "LISTEN_FDS=1"}, []string{"unknown"}, []string{
			`parse: names=unknown ignored=""`,
			`file unknown: ok`,
		}},
		{"LISTEN_FDS without LISTEN_PID", []*os.File{listenfd.FileOf(web)}, []string{"LISTEN_FDS=1"}, nil, []string{
			`parse: names= ignored="LISTEN_FDS is set but LISTEN_PID is not"`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := scenarioCmd("parse", tc.ask...)
			cmd.Env = append(withoutListen(cmd.Env), tc.env...)
			cmd.ExtraFiles = tc.files
			p := proctest.Start(t, cmd, proctest.Options{Limit: 60e9})
			lines, how := p.End()
			p.Ended(how, "exit 0")
			var want []string
			for _, w := range tc.want {
				w = strings.ReplaceAll(w, "(PID)", fmt.Sprintf("(%d)", p.Cmd.Process.Pid))
				if re, ok := strings.CutPrefix(w, "re:"); ok {
					want = append(want, re)
				} else {
					want = append(want, regexp.QuoteMeta(w))
				}
			}
			if got := strings.Join(lines, "\n"); !regexp.MustCompile("^" + strings.Join(want, "\n") + "$").MatchString(got) {
				t.Errorf("got:\n%s\nwant:\n%s", got, strings.Join(tc.want, "\n"))
			}
		})
	}
}

func withoutListen(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "LISTEN_") {
			out = append(out, kv)
		}
	}
	return out
}

// TestReceivedNotInherited (issue 23, item 3): a worker's received
// descriptors are close-on-exec once Receive ran, so that a program the
// worker starts with plain os/exec does not hold the sockets, and the
// variables it inherits name the worker, not it.
func TestReceivedNotInherited(t *testing.T) {
	p := startPassed(t, scenarioCmd("receiveAndSpawn"), twoSockets(t), listenfd.GoWorker)
	if got, want := p.WaitFor("worker"), "worker fd3=socket,cloexec fd4=socket,cloexec"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// (What the grandchild's Go runtime opened there is not a socket.)
	got := p.WaitFor("grandchild")
	want := fmt.Sprintf(`ignored="LISTEN_PID=%d names another process than this one (`, p.Cmd.Process.Pid)
	if strings.Contains(got, "socket") || !strings.Contains(got, want) {
		t.Errorf("got %q, want no socket at 3 and 4, and %q...", got, want)
	}
	_, how := p.End()
	p.Ended(how, "exit 0")
}

// TestPassErrors: what Pass refuses.
func TestPassErrors(t *testing.T) {
	a := openT(t, "web", "tcp", "127.0.0.1:0")
	b := openT(t, "web", "unix", filepath.Join(t.TempDir(), "s"))
	if _, err := listenfd.Pass(exec.Command("/bin/true"), []*listenfd.Socket{a, b}, listenfd.GoWorker); err == nil || !strings.Contains(err.Error(), `the name is passed twice (as descriptors 3 and 4)`) {
		t.Errorf("a name twice: %v", err)
	}
	c, err := listenfd.Open("closed", "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := listenfd.Pass(exec.Command("/bin/true"), []*listenfd.Socket{c}, listenfd.GoWorker); err == nil || !strings.Contains(err.Error(), `listener "closed" (tcp 127.0.0.1:`) || !strings.HasSuffix(err.Error(), "is closed") {
		t.Errorf("a closed socket: %v", err)
	}
	cmd := exec.Command("/bin/true")
	h, err := listenfd.Pass(cmd, nil, listenfd.AnyProgram)
	if h != nil || err != nil || cmd.Env != nil || cmd.Path != "/bin/true" {
		t.Errorf("no sockets: Pass changed the command or failed: %v, %v", h, err)
	}
	if err := h.Started(nil); err != nil {
		t.Errorf("a nil Handoff's Started: %v", err)
	}
}

package listenfd_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/multiexit/multiexit/internal/listenfd"
	"github.com/multiexit/multiexit/internal/proctest"
)

// The test binary is every Go program the tests run: TestMain runs the
// scenario named in LF_SCENARIO instead of the tests. Before that it calls
// the exec shim's entry, as the root package's init does in a program, so
// that the test binary is also the shim.
const scenarioVar = "LF_SCENARIO"

var scenarios = map[string]func(args []string){}

// fakeSystemdVar makes a scenario set LISTEN_PID to its own PID first
// thing, as systemd does between fork and exec.
const fakeSystemdVar = "LF_FAKE_SYSTEMD"

func TestMain(m *testing.M) {
	listenfd.Shim()
	if name := os.Getenv(scenarioVar); name != "" {
		f, ok := scenarios[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown scenario %q\n", name)
			os.Exit(98)
		}
		if os.Getenv(fakeSystemdVar) != "" {
			os.Setenv(listenfd.EnvPID, fmt.Sprint(os.Getpid()))
			os.Unsetenv(fakeSystemdVar)
		}
		f(os.Args[1:])
		os.Exit(0)
	}
	goleak.VerifyTestMain(m, proctest.IgnoreForkThread(), goleak.Cleanup(func(code int) {
		if cDir != "" {
			os.RemoveAll(cDir)
		}
		os.Exit(code)
	}))
}

// say writes one line to standard output in one write.
func say(format string, args ...any) {
	os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n")
}

// fail ends a scenario with status 3 and a line that says why.
func fail(format string, args ...any) {
	say("error: "+format, args...)
	os.Exit(3)
}

// scenarioCmd is a command that runs scenario name of this test binary.
func scenarioCmd(name string, args ...string) *exec.Cmd {
	if _, ok := scenarios[name]; !ok {
		panic("scenario " + name + " is not registered")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), scenarioVar+"="+name)
	return cmd
}

// openT opens a socket for t and closes it at the end.
func openT(t *testing.T, name, network, address string) *listenfd.Socket {
	t.Helper()
	s, err := listenfd.Open(name, network, address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// startPassed passes socks to cmd as recv and starts it; the process ends
// within a minute whatever happens.
func startPassed(t *testing.T, cmd *exec.Cmd, socks []*listenfd.Socket, recv listenfd.Receiver) *proctest.Proc {
	t.Helper()
	h, err := listenfd.Pass(cmd, socks, recv)
	if err != nil {
		t.Fatal(err)
	}
	p := proctest.Start(t, cmd, proctest.Options{Limit: time.Minute})
	if err := h.Started(nil); err != nil {
		t.Fatalf("Started: %v", err)
	}
	return p
}

// greet connects to s and returns the line the server writes.
func greet(t *testing.T, s *listenfd.Socket) string {
	t.Helper()
	network := s.Network()
	if strings.HasPrefix(network, "tcp") {
		network = "tcp"
	}
	c, err := net.Dial(network, s.Addr())
	if err != nil {
		t.Fatalf("dial %v: %v", s, err)
	}
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read from %v: %v", s, err)
	}
	return strings.TrimSuffix(line, "\n")
}

// flags are the descriptor's file status flags (F_GETFL) and descriptor
// flags (F_GETFD).
func flags(t *testing.T, f *os.File) (fl, fd int) {
	t.Helper()
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	fd, err = unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fl, fd
}

// cChild is the C-style child: sd_listen_fds's checks as libsystemd makes
// them (LISTEN_PID must be its PID, descriptors from 3, made
// close-on-exec, one name each), then, by mode:
//
//	serve  accept one connection on each socket in order, in blocking
//	       mode, and write "hello from NAME pid PID"
//	probe  say whether descriptor 3 is non-blocking; if it is, try one
//	       accept with no connection waiting and say what it returned
//	sigign say the ignored-signal set (no checks)
const cChild = `
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static char *names[64];

static int listen_fds(void) {
	const char *e = getenv("LISTEN_PID");
	char *end;
	if (!e) { printf("error: no LISTEN_PID\n"); return -1; }
	errno = 0;
	long pid = strtol(e, &end, 10);
	if (errno || *end || end == e) { printf("error: LISTEN_PID=%s\n", e); return -1; }
	if (pid != (long)getpid()) { printf("error: LISTEN_PID=%ld is not my PID %d\n", pid, (int)getpid()); return -1; }
	e = getenv("LISTEN_FDS");
	if (!e) { printf("error: no LISTEN_FDS\n"); return -1; }
	long n = strtol(e, &end, 10);
	if (*end || n < 1 || n > 64) { printf("error: LISTEN_FDS=%s\n", e); return -1; }
	for (int fd = 3; fd < 3 + n; fd++) {
		int fl = fcntl(fd, F_GETFD);
		if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0) { printf("error: fd %d: %s\n", fd, strerror(errno)); return -1; }
	}
	e = getenv("LISTEN_FDNAMES");
	if (!e) { printf("error: no LISTEN_FDNAMES\n"); return -1; }
	char *s = strdup(e);
	int i = 0;
	for (char *tok = strsep(&s, ":"); tok; tok = strsep(&s, ":")) {
		if (i == n) { printf("error: more names than LISTEN_FDS\n"); return -1; }
		names[i++] = tok;
	}
	if (i != n) { printf("error: %d names for LISTEN_FDS=%ld\n", i, n); return -1; }
	return (int)n;
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *mode = argc > 1 ? argv[1] : "serve";
	if (!strcmp(mode, "sigign")) {
		FILE *f = fopen("/proc/self/status", "r");
		char line[256];
		while (fgets(line, sizeof line, f))
			if (!strncmp(line, "SigIgn:", 7)) printf("%s", line);
		return 0;
	}
	int n = listen_fds();
	if (n < 0) return 3;
	printf("ready pid=%d names=", (int)getpid());
	for (int i = 0; i < n; i++) printf("%s%s", i ? "," : "", names[i]);
	for (int fd = 3; fd < 3 + n; fd++) {
		struct stat st;
		int acc = 0;
		socklen_t len = sizeof acc;
		fstat(fd, &st);
		getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len);
		printf(" fd%d=%s%s%s", fd, S_ISSOCK(st.st_mode) ? "socket" : "other", acc ? ",listening" : "",
			(fcntl(fd, F_GETFL) & O_NONBLOCK) ? ",nonblock" : ",blocking");
	}
	printf("\n");
	if (!strcmp(mode, "probe")) {
		if (!(fcntl(3, F_GETFL) & O_NONBLOCK)) { printf("blocking: no probe\n"); return 0; }
		int c = accept(3, NULL, NULL);
		printf("accept: %s\n", c < 0 ? (errno == EAGAIN ? "EAGAIN" : strerror(errno)) : "a connection");
		return 0;
	}
	for (int i = 0; i < n; i++) {
		int c = accept(3 + i, NULL, NULL);
		if (c < 0) { printf("error: accept %s: %s\n", names[i], strerror(errno)); return 4; }
		dprintf(c, "hello from %s pid %d\n", names[i], (int)getpid());
		close(c);
	}
	return 0;
}
`

var (
	cOnce sync.Once
	cDir  string // where cChild is built, removed at the end
	cBin  string
	cErr  string // why it is not: a skip ("skip: ...") or a failure
)

// cProgram compiles cChild, once per test binary, or skips t if there is
// no C compiler.
func cProgram(t *testing.T) string {
	t.Helper()
	cOnce.Do(func() {
		cc, err := exec.LookPath("gcc")
		if err != nil {
			if cc, err = exec.LookPath("cc"); err != nil {
				cErr = fmt.Sprintf("skip: no C compiler (gcc or cc) to build the C-style child: %v", err)
				return
			}
		}
		if cDir, err = os.MkdirTemp("", "listenfd-test-"); err != nil {
			cErr = err.Error()
			return
		}
		src, bin := filepath.Join(cDir, "sdchild.c"), filepath.Join(cDir, "sdchild")
		if err := os.WriteFile(src, []byte(cChild), 0o644); err != nil {
			cErr = err.Error()
			return
		}
		if out, err := exec.Command(cc, "-O1", "-o", bin, src).CombinedOutput(); err != nil {
			cErr = fmt.Sprintf("%s: %v\n%s", cc, err, out)
			return
		}
		cBin = bin
	})
	if why, ok := strings.CutPrefix(cErr, "skip: "); ok {
		t.Skip(why)
	}
	if cErr != "" {
		t.Fatal(cErr)
	}
	return cBin
}

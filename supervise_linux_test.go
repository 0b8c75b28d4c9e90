package multiexit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiexit/multiexit"
)

func init() {
	scenario(supervisedPool, supervisedBoot, supervisedListeners)
}

// sayLog is a slog handler that says each record's message as a line
// "log MESSAGE", so that a test can wait for the supervisor's events.
type sayLog struct{}

func (sayLog) Enabled(context.Context, slog.Level) bool { return true }
func (sayLog) Handle(_ context.Context, r slog.Record) error {
	line := "log " + r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "attempt" {
			line += " attempt=" + a.Value.String()
		}
		return true
	})
	say("%s", line)
	return nil
}
func (h sayLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h sayLog) WithGroup(string) slog.Handler      { return h }

// supervisedPool: main, with hook H1 below it, starts one supervised
// worker (Supervise) that registers the shared hook S and its own hook,
// then says "ready wN PID" (N its incarnation) and behaves as args[0] says, in each
// incarnation N (Incarnation):
//
//	crash-once   incarnation 0 exits 1 (without its hooks, as a crash);
//	             the next ones serve until stopped
//	crash        every incarnation exits 1 at once
//	exit0        exits 0; args[1] "always" supervises with Policy.Always,
//	             and only incarnation 0 exits
//	retire       calls Retire(0) under Policy.Always
//	race         at SIGUSR1, sends SIGTERM to main and exits 1 at once
//
// args[1] "slow" sets a backoff of an hour after the first restart;
// "in-shutdown" registers, above the entry, a hook that sends SIGUSR1 to
// the worker and waits for it (Wait).
// OnRestart says "restarted ATTEMPT OLDPID -> PID"; main says "waited
// STATUS restarts N" when Wait returns.
func supervisedPool(args []string) {
	mode := args[0]
	if multiexit.IsChild() {
		cue := make(chan os.Signal, 1)
		signal.Notify(cue, syscall.SIGUSR1) // before Install acknowledges: OnRestart may send it then
		mustInstall()
		multiexit.Register(func(context.Context) error {
			say("w%d own", multiexit.Incarnation())
			return nil
		})
		say("ready w%d %d", multiexit.Incarnation(), os.Getpid())
		switch {
		case mode == "crash-once" && multiexit.Incarnation() == 0, mode == "crash":
			os.Exit(1)
		case mode == "exit0" && (len(args) < 2 || multiexit.Incarnation() == 0):
			os.Exit(0) // under "always", only the first
		case mode == "retire":
			multiexit.Retire(0)
		case mode == "race":
			<-cue
			syscall.Kill(os.Getppid(), syscall.SIGTERM)
			os.Exit(1)
		}
		for range cue {
			say("w%d usr1", multiexit.Incarnation())
		}
	}
	mustInstall(multiexit.WithLogger(slog.New(sayLog{})), multiexit.WithGrace(10*time.Second))
	multiexit.Register(hook("H1"))
	sharedS.Register("s")
	p := multiexit.Policy{Interval: time.Hour, Backoff: time.Millisecond}
	var opt string
	if len(args) > 1 {
		opt = args[1]
	}
	switch {
	case opt == "slow":
		p.Backoff, p.MaxBackoff = time.Hour, time.Hour
	case opt == "always" || mode == "retire":
		p.Always = true
	}
	p.OnRestart = func(e multiexit.RestartEvent) {
		say("restarted %d %d -> %d", e.Attempt, e.OldPID, e.Child.PID())
		if opt == "handle" {
			e.Child.Signal(syscall.SIGUSR1) // reaches the new process
		}
	}
	if opt == "run" {
		// Under Run: main waits for its context, says why it ended, and
		// returns at SIGUSR2.
		usr2 := make(chan os.Signal, 1)
		signal.Notify(usr2, syscall.SIGUSR2)
		multiexit.Run(func(ctx context.Context) error {
			mustStart(multiexit.Supervise(multiexit.Command(args...), p))
			say("ready main")
			<-ctx.Done()
			say("main done %v", errors.Is(context.Cause(ctx), multiexit.ErrRestartLimit))
			<-usr2
			say("main returning")
			return nil
		})
	}
	var usr2 chan os.Signal
	if opt == "handle" {
		usr2 = make(chan os.Signal, 1)
		signal.Notify(usr2, syscall.SIGUSR2)
	}
	kids := mustStart(multiexit.Supervise(multiexit.Command(args...), p))
	if opt == "handle" {
		// At SIGUSR2 main stops the supervised child through its handle,
		// while main's Wait below waits for it.
		go func() {
			<-usr2
			err := kids[0].Stop()
			say("stopped %v restarts %d", err, kids[0].Restarts())
		}()
	}
	if opt == "in-shutdown" {
		multiexit.Register(func(ctx context.Context) error {
			syscall.Kill(kids[0].PID(), syscall.SIGUSR1)
			err := kids[0].Wait()
			say("waited %v restarts %d", err, kids[0].Restarts())
			return nil
		})
	}
	say("ready main")
	if opt != "in-shutdown" {
		err := kids[0].Wait()
		say("waited %v restarts %d", err, kids[0].Restarts())
	}
	select {}
}

// events splits a trace into the hooks' lines and the lines that say
// what happened (log, restarted, waited).
func events(trace []string) (hooks []string, said map[string][]string) {
	said = map[string][]string{}
	for _, l := range trace {
		kind, _, _ := strings.Cut(l, " ")
		switch kind {
		case "log", "restarted", "waited", "stopped":
			said[kind] = append(said[kind], l)
		default:
			hooks = append(hooks, l)
		}
	}
	return hooks, said
}

// The handle follows the process: Signal reaches the restarted one, and
// Stop stops it (its hooks run) and ends the supervision (no restart).
func TestSupervisedHandleFollowsTheProcess(t *testing.T) {
	p := start(t, supervisedPool, []string{"crash-once", "handle"})
	p.WaitAll("ready main", "restarted 1 ", "w1 usr1")
	p.Signal(syscall.SIGUSR2)
	if got := p.WaitFor("stopped "); got != "stopped signal: terminated restarts 1" {
		t.Errorf("said %q", got)
	}
	p.Signal(syscall.SIGTERM)
	trace, how := p.end()
	hooks, said := events(trace)
	want := []string{"w1 usr1", "w1 own", "crash-once S(s)", "main S(s)", "H1"}
	if strings.Join(hooks, "|") != strings.Join(want, "|") || how != diedOf(syscall.SIGTERM) || len(said["restarted"]) != 1 {
		t.Fatalf("ended with %s, hooks %q, want %q, said %q; stderr:\n%s", how, hooks, want, said, p.Stderr.String())
	}
}

// A supervised worker that crashes is started again in its place: a new
// PID, the next incarnation, the shared hooks it had; OnRestart sees it;
// at SIGTERM the new process runs its hooks, above main's, and Wait
// returns the last process's status (issue 19).
func TestSupervisedWorkerIsRestarted(t *testing.T) {
	p := start(t, supervisedPool, []string{"crash-once"})
	// The new worker says it is ready after its Install acknowledged,
	// before or after OnRestart's line.
	seen := p.WaitAll("ready main", "restarted 1 ", "ready w1 ")
	var pid0, pid1, ready1 int
	fmt.Sscanf(seen["restarted 1 "], "restarted 1 %d -> %d", &pid0, &pid1)
	fmt.Sscanf(seen["ready w1 "], "ready w1 %d", &ready1)
	if ready1 != pid1 {
		t.Errorf("OnRestart said PID %d, the new worker is %d", pid1, ready1)
	}
	p.Signal(syscall.SIGTERM)
	trace, how := p.end()
	hooks, said := events(trace)
	want := []string{"w1 own", "crash-once S(s)", "main S(s)", "H1"}
	if strings.Join(hooks, "|") != strings.Join(want, "|") || how != diedOf(syscall.SIGTERM) || pid0 == pid1 ||
		len(said["waited"]) != 1 || said["waited"][0] != "waited signal: terminated restarts 1" {
		t.Fatalf("ended with %s, hooks %q, want %q (pids %d, %d), said %q; stderr:\n%s", how, hooks, want, pid0, pid1, said, p.Stderr.String())
	}
}

// A crash loop trips the intensity limit: after Burst restarts the whole
// tree stops in order and the process exits 1, the error naming the child
// and the limit; no restart follows.
func TestSupervisedCrashLoopTripsTheLimit(t *testing.T) {
	p := start(t, supervisedPool, []string{"crash"})
	trace, how := p.end()
	hooks, said := events(trace)
	var limit string
	for _, l := range said["log"] {
		if strings.Contains(l, "restart limit reached") {
			limit = l
		}
	}
	if how != exitCode(1) || len(said["restarted"]) != 5 || limit == "" || !strings.Contains(limit, "Burst 5") ||
		strings.Join(hooks, "|") != "main S(s)|H1" {
		t.Fatalf("ended with %s, hooks %q, said %q; stderr:\n%s", how, hooks, said, p.Stderr.String())
	}
}

// Under Run, the restart limit ends main's context with a cause that wraps
// ErrRestartLimit, and the hooks wait for main to return, as after a
// signal; the process exits 1.
func TestRestartLimitWaitsForRunsMain(t *testing.T) {
	p := start(t, supervisedPool, []string{"crash", "run"})
	p.WaitAll("ready main", "main done ")
	p.Signal(syscall.SIGUSR2)
	trace, how := p.end()
	hooks, said := events(trace)
	if got, want := strings.Join(hooks, "|"), "main done true|main returning|main S(s)|H1"; how != exitCode(1) || got != want {
		t.Fatalf("ended with %s, hooks %q, want %q, said %q; stderr:\n%s", how, got, want, said, p.Stderr.String())
	}
}

// A SIGTERM during a backoff wait cancels the restart at once: the tree
// stops in order, nothing is started again (the backoff is an hour), the
// log says so, and Restarts counts the one restart that happened.
func TestSIGTERMDuringBackoffCancelsTheRestart(t *testing.T) {
	p := start(t, supervisedPool, []string{"crash", "slow"})
	// The second restart waits an hour.
	p.WaitAll("ready main", "restarted 1 ", "log multiexit: supervised child exited; restarting it attempt=2")
	p.Signal(syscall.SIGTERM)
	trace, how := p.end()
	hooks, said := events(trace)
	if how != diedOf(syscall.SIGTERM) || len(said["restarted"]) != 1 || strings.Join(hooks, "|") != "main S(s)|H1" ||
		!slices.Contains(said["log"], "log multiexit: supervised child's restart cancelled: the shutdown began attempt=2") ||
		len(said["waited"]) != 1 || said["waited"][0] != "waited exit status 1 restarts 1" {
		t.Fatalf("ended with %s, hooks %q, said %q; stderr:\n%s", how, hooks, said, p.Stderr.String())
	}
}

// A worker that crashes once the shutdown has begun (a hook above its
// entry cues it) is not restarted: the hook sees Wait return with no
// restart, and the process still dies by SIGTERM, not of the limit.
func TestCrashDuringTheShutdownIsNotRestarted(t *testing.T) {
	p := start(t, supervisedPool, []string{"race", "in-shutdown"})
	p.WaitAll("ready main", "ready w0 ")
	p.Signal(syscall.SIGTERM)
	trace, how := p.end()
	hooks, said := events(trace)
	if how != diedOf(syscall.SIGTERM) || strings.Join(hooks, "|") != "main S(s)|H1" || len(said["restarted"]) != 0 ||
		len(said["waited"]) != 1 || said["waited"][0] != "waited exit status 1 restarts 0" {
		t.Fatalf("ended with %s, hooks %q, said %q; stderr:\n%s", how, hooks, said, p.Stderr.String())
	}
}

// A crash that races a SIGTERM (the worker sends SIGTERM to its parent
// and exits 1 at once) is not counted: the process dies by SIGTERM, with
// its hooks in order. Whether the crash is restarted depends on which the
// parent sees first; if it is, the new process is stopped in its turn and
// runs its hooks. On a loaded machine the parent's stop can even reach the
// worker before its exit: then the worker runs its hooks.
func TestCrashRacingSIGTERM(t *testing.T) {
	for range 10 {
		p := start(t, supervisedPool, []string{"race"})
		var pid int
		fmt.Sscanf(p.WaitAll("ready main", "ready w0 ")["ready w0 "], "ready w0 %d", &pid)
		syscall.Kill(pid, syscall.SIGUSR1)
		trace, how := p.end()
		hooks, said := events(trace)
		// Four orders: the crash first (no worker hooks), the stop first
		// (the worker, slow to reach its exit, runs its hooks), the stop
		// first but the crash's os.Exit cutting the worker's hooks short
		// after the first, or the crash seen and restarted just before the
		// shutdown began.
		// A restarted process may be stopped between its Install and its
		// own hook's Register: then its shared hook runs first, and its
		// own hook, registered while the stack runs, after it, as the
		// newest entry (see Register), or not at all if the stack was
		// done by then (OnRestart, called once it acknowledged, may or
		// may not have said so).
		want := []string{"main S(s)|H1", "w0 own|race S(s)|main S(s)|H1", "w0 own|main S(s)|H1",
			"w1 own|race S(s)|main S(s)|H1", "race S(s)|main S(s)|H1", "race S(s)|w1 own|main S(s)|H1"}
		if how != diedOf(syscall.SIGTERM) || !slices.Contains(want, strings.Join(hooks, "|")) || len(said["restarted"]) > 1 {
			t.Fatalf("ended with %s, hooks %q, want %q, said %q; stderr:\n%s", how, hooks, want, said, p.Stderr.String())
		}
	}
}

// What ends a supervised child for good: exit 0 under the default policy,
// Retire under Always. Exit 0 under Always is restarted.
func TestSupervisedDeliberateExit(t *testing.T) {
	for _, c := range []struct {
		args      []string
		restarted bool
		hooks     string
	}{
		{[]string{"exit0"}, false, "main S(s)|H1"},
		{[]string{"retire"}, false, "w0 own|retire S(s)|main S(s)|H1"}, // Retire is Exit: the worker's hooks run
		{[]string{"exit0", "always"}, true, "w1 own|exit0 S(s)|main S(s)|H1"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			p := start(t, supervisedPool, c.args)
			if c.restarted {
				p.WaitAll("ready main", "restarted 1 ", "ready w1 ")
			} else {
				if got := p.WaitAll("ready main", "waited ")["waited "]; got != "waited <nil> restarts 0" {
					t.Errorf("said %q", got)
				}
			}
			p.Signal(syscall.SIGTERM)
			trace, how := p.end()
			hooks, said := events(trace)
			got := strings.Join(hooks, "|")
			if how != diedOf(syscall.SIGTERM) || got != c.hooks || !c.restarted && len(said["restarted"]) != 0 {
				t.Fatalf("ended with %s, hooks %q, said %q; stderr:\n%s", how, hooks, said, p.Stderr.String())
			}
		})
	}
}

// supervisedBoot: a supervised worker that exits before it acknowledged
// Install fails Start, and is not started again.
func supervisedBoot(args []string) {
	if multiexit.IsChild() {
		say("ready w %d", os.Getpid())
		os.Exit(3)
	}
	mustInstall(multiexit.WithLogger(slog.New(sayLog{})))
	_, err := multiexit.Start(multiexit.Supervise(multiexit.Command(), multiexit.Policy{}))
	say("start: %v", err)
	multiexit.Exit(0)
}

func TestSupervisedBootFailureFailsStart(t *testing.T) {
	p := start(t, supervisedBoot, nil)
	trace, how := p.End()
	var starts, readies []string
	for _, l := range trace {
		if strings.HasPrefix(l, "start: ") {
			starts = append(starts, l)
		}
		if strings.HasPrefix(l, "ready w ") {
			readies = append(readies, l)
		}
	}
	if how != exitCode(0) || len(starts) != 1 || !strings.Contains(starts[0], "exited before it acknowledged Install: exit status 3") ||
		len(readies) != 1 {
		t.Fatalf("ended with %s, trace %q; stderr:\n%s", how, trace, p.Stderr.String())
	}
}

// supervisedListeners: main opens a Unix socket with Listen and starts a
// supervised worker that crashes once, an external shell marked with
// ShareListeners, and a supervised one that exits 1 once; each says what it was handed: LISTEN_FDS,
// LISTEN_FDNAMES, whether LISTEN_PID is its own PID, and whether
// descriptor 3 is a socket.
func supervisedListeners(args []string) {
	if multiexit.IsChild() {
		mustInstall()
		var st syscall.Stat_t
		sock := syscall.Fstat(3, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFSOCK
		say("w%d fds=%s names=%s pidok=%v sock=%v", multiexit.Incarnation(), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES"),
			os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()), sock)
		if multiexit.Incarnation() == 0 {
			os.Exit(1)
		}
		select {}
	}
	mustInstall(multiexit.WithLogger(slog.New(sayLog{})))
	if _, err := multiexit.Listen("web", "unix", args[0]); err != nil {
		say("listen: %v", err)
		multiexit.Exit(1)
	}
	if _, err := multiexit.Listen("web", "unix", args[0]+"2"); err == nil || !strings.Contains(err.Error(), `"web"`) {
		say("second Listen web: %v", err)
	}
	if len(args) > 1 && args[1] == "missing" {
		_, err := multiexit.Start(multiexit.ShareListeners(exec.Command("/nonexistent/prog")))
		say("missing: %v", err)
		multiexit.Exit(0)
	}
	sh := exec.Command("sh", "-c", `[ "$LISTEN_PID" = $$ ] && ok=true || ok=false; [ -S /dev/fd/3 ] && s=true || s=false; echo "ext fds=$LISTEN_FDS names=$LISTEN_FDNAMES pidok=$ok sock=$s"; exec sleep 1000`)
	sh.Stdout = os.Stdout
	// A supervised external command: its first process exits 1, its
	// restarted one must get the listeners too.
	mark := args[0] + ".started"
	sx := exec.Command("sh", "-c", `n=0; [ -e "$1" ] && n=1; [ "$LISTEN_PID" = $$ ] && ok=true || ok=false; [ -S /dev/fd/3 ] && s=true || s=false; echo "sx$n fds=$LISTEN_FDS names=$LISTEN_FDNAMES pidok=$ok sock=$s"; [ $n = 0 ] && : >"$1" && exit 1; exec sleep 1000`, "sh", mark)
	sx.Stdout = os.Stdout
	cmds := []*exec.Cmd{multiexit.Supervise(multiexit.Command(), multiexit.Policy{}), multiexit.ShareListeners(sh),
		multiexit.Supervise(multiexit.ShareListeners(sx), multiexit.Policy{})}
	if len(args) > 1 { // a C program that asks libsystemd
		c := exec.Command(args[1])
		c.Stdout = os.Stdout
		cmds = append(cmds, multiexit.ShareListeners(c))
	}
	mustStart(cmds...)
	say("ready main")
	select {}
}

// Listeners (issue 19): every worker — the restarted one too — and an
// external command marked with ShareListeners — restarted too — receive the socket in the
// systemd format, LISTEN_PID naming themselves.
func TestListenersReachRestartedWorkersAndMarkedCommands(t *testing.T) {
	p := start(t, supervisedListeners, []string{filepath.Join(t.TempDir(), "web.sock")})
	lines := p.WaitAll("ready main", "w0 ", "w1 ", "ext ", "sx0 ", "sx1 ")
	for _, k := range []string{"w0 ", "w1 ", "ext ", "sx0 ", "sx1 "} {
		if want := k + "fds=1 names=web pidok=true sock=true"; lines[k] != want {
			t.Errorf("%q, want %q", lines[k], want)
		}
	}
	p.Signal(syscall.SIGTERM)
	trace, how := p.end()
	if how != diedOf(syscall.SIGTERM) {
		t.Errorf("ended with %s, trace %q; stderr:\n%s", how, trace, p.Stderr.String())
	}
	for _, l := range trace {
		if strings.HasPrefix(l, "second Listen") || strings.HasPrefix(l, "listen:") {
			t.Errorf("%s", l)
		}
	}
}

// A marked command that cannot be executed fails Start with the error
// os/exec gives, naming the command (not the exec shim in its place).
func TestListenersMarkedCommandThatCannotStart(t *testing.T) {
	p := start(t, supervisedListeners, []string{filepath.Join(t.TempDir(), "web.sock"), "missing"})
	got := p.WaitFor("missing: ")
	if want := "missing: multiexit: Start /nonexistent/prog: fork/exec /nonexistent/prog: no such file or directory"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	p.end()
}

// sdListen is a C program that takes its sockets as systemd's own library
// does: sd_listen_fds_with_names checks LISTEN_PID against its PID, and
// sd_is_socket_unix that descriptor 3 is a listening Unix stream socket.
const sdListen = `#include <stdio.h>
#include <unistd.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
int main(void) {
	char **names = NULL;
	int n = sd_listen_fds_with_names(1, &names);
	int unixlisten = n > 0 ? sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) : -1;
	printf("c n=%d name=%s unixlisten=%d env=%s\n", n, n > 0 ? names[0] : "-", unixlisten, getenv("LISTEN_FDS") ? "kept" : "unset");
	fflush(stdout);
	pause();
	return 0;
}
`

// A C child marked with ShareListeners finds the socket with libsystemd's
// sd_listen_fds_with_names (issue 19: sd_listen_fds works in it).
func TestListenersReachALibsystemdChild(t *testing.T) {
	dir := t.TempDir()
	src, prog := filepath.Join(dir, "sdlisten.c"), filepath.Join(dir, "sdlisten")
	if err := os.WriteFile(src, []byte(sdListen), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cc", "-o", prog, src, "-lsystemd").CombinedOutput(); err != nil {
		t.Skipf("cannot build a libsystemd program (CI installs gcc and libsystemd-dev): %v\n%s", err, out)
	}
	p := start(t, supervisedListeners, []string{filepath.Join(dir, "web.sock"), prog})
	// unset_environment=1: the library unsets LISTEN_* once it took them.
	if got, want := p.WaitAll("ready main", "c ")["c "], "c n=1 name=web unixlisten=1 env=unset"; got != want {
		t.Errorf("the C child said %q, want %q", got, want)
	}
	p.Signal(syscall.SIGTERM)
	if _, how := p.end(); how != diedOf(syscall.SIGTERM) {
		t.Errorf("ended with %s; stderr:\n%s", how, p.Stderr.String())
	}
}

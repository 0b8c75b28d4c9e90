package multiexit_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiexit/multiexit"
)

func init() {
	scenario(reloadPool, reloadNothing)
}

// reloadPool: main, with hook H1 below it, starts two supervised workers
// (one Start) and reloads them at SIGHUP (WithReloadSignal), reporting
// each reload (WithReloadEvents) as "reloaded G children N" or "reload G
// failed: ERR". At SIGUSR1 it says "pool gen G pids A B" (Generation and
// the PIDs its two *Child handles stand for); at SIGUSR2 it calls Reload
// itself and says "Reload: ERR".
//
// A worker registers a hook that says "hooks w gen G variant=V" (V: the
// variable MX_VARIANT, which a replaced binary sets), says "ready w PID gen
// G variant=V" and serves until stopped. A worker of generation 2 or more
// does, before Install, what args[0] says:
//
//	ok        nothing
//	crash-new exits 1
//	hold-new  says "holding w PID gen G", then waits for a byte from the
//	          FIFO named by MX_HOLD
func reloadPool(args []string) {
	mode := args[0]
	if multiexit.IsChild() {
		g := multiexit.Generation()
		variant := os.Getenv("MX_VARIANT")
		multiexit.Register(func(context.Context) error {
			say("hooks w gen %d variant=%s", g, variant)
			return nil
		})
		if g >= 2 {
			switch mode {
			case "crash-new":
				os.Exit(1)
			case "hold-new":
				say("holding w %d gen %d", os.Getpid(), g)
				f, err := os.Open(os.Getenv("MX_HOLD"))
				if err != nil {
					say("hold: %v", err)
					os.Exit(3)
				}
				var b [1]byte
				f.Read(b[:])
			}
		}
		mustInstall()
		say("ready w %d gen %d variant=%s", os.Getpid(), g, variant)
		select {}
	}
	mustInstall(multiexit.WithLogger(slog.New(sayLog{})), multiexit.WithGrace(10*time.Second),
		multiexit.WithReloadSignal(syscall.SIGHUP),
		multiexit.WithReloadEvents(func(e multiexit.ReloadEvent) {
			switch {
			case e.Err != nil:
				say("reload %d failed: %v", e.Generation, e.Err)
			case e.Done:
				say("reload done %d", e.Generation)
			default:
				say("reloaded %d children %d", e.Generation, e.Children)
			}
		}))
	multiexit.Register(hook("H1"))
	kids := mustStart(multiexit.Supervise(multiexit.Command(args...), multiexit.Policy{}),
		multiexit.Supervise(multiexit.Command(args...), multiexit.Policy{}))
	usr := make(chan os.Signal, 2)
	signal.Notify(usr, syscall.SIGUSR1, syscall.SIGUSR2)
	say("ready main")
	for sig := range usr {
		if sig == syscall.SIGUSR2 {
			go func() { say("Reload: %v", multiexit.Reload(context.Background())) }()
			continue
		}
		say("pool gen %d pids %d %d", multiexit.Generation(), kids[0].PID(), kids[1].PID())
	}
}

// reloadProc is a reloadPool process.
type reloadProc struct {
	*proc
}

func startReload(t *testing.T, mode string, setup func(*exec.Cmd), env ...string) reloadProc {
	t.Helper()
	p := reloadProc{startWith(t, setup, reloadPool, []string{mode}, env...)}
	main, workers := false, 0
	for !main || workers < 2 {
		l := p.WaitFor("ready ")
		main = main || l == "ready main"
		if strings.HasPrefix(l, "ready w ") {
			workers++
		}
	}
	return p
}

// waitN reads lines until n more start with prefix, and returns them.
func (p reloadProc) waitN(prefix string, n int) []string {
	p.t.Helper()
	var out []string
	for len(out) < n {
		out = append(out, p.WaitFor(prefix))
	}
	return out
}

// pool asks for the pool's generation and PIDs.
func (p reloadProc) pool() string {
	p.t.Helper()
	p.Signal(syscall.SIGUSR1)
	return p.WaitFor("pool ")
}

// workerPIDs are the PIDs of the "ready w PID gen G" lines seen so far,
// for generation gen.
func (p reloadProc) workerPIDs(gen int) []int {
	var pids []int
	for _, l := range p.Seen {
		var pid, g int
		if n, _ := fmt.Sscanf(l, "ready w %d gen %d", &pid, &g); n == 2 && g == gen {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids
}

// readyWorkers reads lines until n "ready w PID gen G" lines of
// generation gen were seen, and returns their PIDs (workerPIDs). A worker
// says it once Install has returned, after its acknowledgement: the line
// is not ordered with anything the parent says after the acknowledgement
// (the reload's report, its end, the pool's PIDs).
func (p reloadProc) readyWorkers(gen, n int) []int {
	p.t.Helper()
	for len(p.workerPIDs(gen)) < n {
		if _, ok := p.Next(); !ok {
			p.t.Fatalf("output ended before %d workers of generation %d said ready; lines:\n%s\nstderr:\n%s", n, gen, strings.Join(p.Seen, "\n"), p.Stderr.String())
		}
	}
	return p.workerPIDs(gen)
}

// poolPIDs are the PIDs of a "pool gen G pids A B" line, sorted.
func poolPIDs(line string) (gen int, pids []int) {
	var a, b int
	fmt.Sscanf(line, "pool gen %d pids %d %d", &gen, &a, &b)
	pids = []int{a, b}
	slices.Sort(pids)
	return gen, pids
}

// stopWithHooks sends SIGTERM and checks that the process dies by it,
// with the workers' hooks and H1 (hooksOf) as want.
func (p reloadProc) stopWithHooks(want ...string) {
	p.t.Helper()
	p.Signal(syscall.SIGTERM)
	trace, how := p.end()
	if got := hooksOf(trace); !slices.Equal(got, want) || how != diedOf(syscall.SIGTERM) {
		p.t.Errorf("ended with %s, hooks %q, want %q\ntrace:\n%s\nstderr:\n%s", how, got, want, strings.Join(trace, "\n"), p.Stderr.String())
	}
}

// hooksOf filters a trace to the workers' hook lines and H1, in order.
func hooksOf(trace []string) []string {
	var out []string
	for _, l := range trace {
		if strings.HasPrefix(l, "hooks w ") || l == "H1" {
			out = append(out, l)
		}
	}
	return out
}

// index is the position of the first line starting with prefix, or -1.
func index(lines []string, prefix string) int {
	return slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, prefix) })
}

// A reload starts a new generation of both workers, waits until both
// acknowledged, puts them in place (the *Child handles now stand for
// them), and only then stops the old generation, whose hooks run; at
// SIGTERM the new generation stops in its entry's turn, above H1.
func TestReload(t *testing.T) {
	p := startReload(t, "ok", nil)
	gen, old := poolPIDs(p.pool())
	if gen != 1 || !slices.Equal(old, p.workerPIDs(1)) {
		t.Fatalf("before the reload: gen %d pids %v, workers %v", gen, old, p.workerPIDs(1))
	}
	p.Signal(syscall.SIGHUP)
	p.WaitFor("reloaded 2 children 2")
	p.waitN("hooks w gen 1", 2)
	p.WaitFor("log multiexit: reload done")
	gen, now := poolPIDs(p.pool())
	if news := p.readyWorkers(2, 2); gen != 2 || !slices.Equal(now, news) {
		t.Fatalf("after the reload: gen %d pids %v, want the new workers %v (old %v)", gen, now, news, old)
	}
	for _, pid := range old {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("old worker %d still alive after the reload", pid)
		}
	}
	p.Signal(syscall.SIGTERM)
	trace, how := p.end()
	// The old workers stopped after the reload was reported. (That the
	// new ones acknowledged first is what the report says; their "ready"
	// lines, written after the acknowledgement, may come before or after
	// it.)
	if r := index(p.Seen, "reloaded 2"); r < 0 || index(p.Seen, "hooks w gen 1") < r {
		t.Errorf("out of order:\n%s", strings.Join(p.Seen, "\n"))
	}
	want := []string{"hooks w gen 1 variant=", "hooks w gen 1 variant=", "hooks w gen 2 variant=", "hooks w gen 2 variant=", "H1"}
	if got := hooksOf(trace); !slices.Equal(got, want) || how != diedOf(syscall.SIGTERM) {
		t.Errorf("ended with %s, hooks %q, want %q\ntrace:\n%s\nstderr:\n%s", how, got, want, strings.Join(trace, "\n"), p.Stderr.String())
	}
}

// A reload whose new workers crash before they acknowledge is rolled
// back: Reload's error names the worker and its status, the old workers
// serve on (the handles still stand for them) and stop at SIGTERM with
// their hooks.
func TestReloadRollsBackWhenNewWorkersCrash(t *testing.T) {
	p := startReload(t, "crash-new", nil)
	_, old := poolPIDs(p.pool())
	p.Signal(syscall.SIGHUP)
	failed := p.WaitAll("reload 2 failed: ", "log multiexit: reload failed; the old generation serves on")["reload 2 failed: "]
	if !strings.Contains(failed, "exited before it acknowledged Install: exit status 1") || !strings.Contains(failed, "worker pid ") {
		t.Errorf("the error does not name the worker and its status: %q", failed)
	}
	gen, now := poolPIDs(p.pool())
	if gen != 1 || !slices.Equal(now, old) {
		t.Errorf("after the failed reload: gen %d pids %v, want 1 %v", gen, now, old)
	}
	for _, pid := range old {
		if err := syscall.Kill(pid, 0); err != nil {
			t.Errorf("old worker %d: %v", pid, err)
		}
	}
	p.stopWithHooks("hooks w gen 1 variant=", "hooks w gen 1 variant=", "H1")
}

// holdFIFO makes a FIFO the held workers of hold-new wait on, and returns
// its environment entry and the end that releases them (a byte each).
func holdFIFO(t *testing.T) (string, *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hold")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	// Read and write: the open does not block, and the workers' opens
	// find a writer.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return "MX_HOLD=" + path, f
}

// A Reload while one runs returns ErrReloadInProgress at once; the first
// goes on, and succeeds once its workers acknowledge.
func TestReloadWhileReloading(t *testing.T) {
	env, release := holdFIFO(t)
	p := startReload(t, "hold-new", nil, env)
	p.Signal(syscall.SIGHUP)
	p.waitN("holding w ", 2)
	p.Signal(syscall.SIGUSR2)
	if got, want := p.WaitFor("Reload: "), "Reload: "+multiexit.ErrReloadInProgress.Error(); got != want {
		t.Errorf("a second reload: %q, want %q", got, want)
	}
	io.WriteString(release, "xx")
	p.WaitFor("reloaded 2 children 2")
	p.WaitFor("log multiexit: reload done")
	if gen, now := poolPIDs(p.pool()); gen != 2 || !slices.Equal(now, p.readyWorkers(2, 2)) {
		t.Errorf("after the reload: gen %d pids %v, want 2 %v", gen, now, p.workerPIDs(2))
	}
	p.stopWithHooks("hooks w gen 1 variant=", "hooks w gen 1 variant=", "hooks w gen 2 variant=", "hooks w gen 2 variant=", "H1")
}

// A SIGTERM while a reload waits for its new workers stops both
// generations in the entry's turn, each worker with its hooks, above H1;
// the reload ends with ErrStopping, and a Reload asked for during the
// shutdown is refused with it.
func TestSIGTERMDuringReload(t *testing.T) {
	env, release := holdFIFO(t)
	p := startReload(t, "hold-new", nil, env)
	p.Signal(syscall.SIGHUP)
	p.waitN("holding w ", 2)
	p.Signal(syscall.SIGTERM)
	p.waitN("hooks w gen 1", 2) // the shutdown reached the entry
	p.Signal(syscall.SIGUSR2)
	if got, want := p.WaitFor("Reload: "), "Reload: "+multiexit.ErrStopping.Error(); got != want {
		t.Errorf("a reload during the shutdown: %q, want %q", got, want)
	}
	io.WriteString(release, "xx") // the new workers install: their SIGTERM was held
	trace, how := p.end()
	want := []string{"hooks w gen 1 variant=", "hooks w gen 1 variant=", "hooks w gen 2 variant=", "hooks w gen 2 variant=", "H1"}
	if got := hooksOf(trace); !slices.Equal(got, want) || how != diedOf(syscall.SIGTERM) {
		t.Errorf("ended with %s, hooks %q, want %q\ntrace:\n%s\nstderr:\n%s", how, got, want, strings.Join(trace, "\n"), p.Stderr.String())
	}
	if i := index(trace, "reload 2 failed: "+multiexit.ErrStopping.Error()); i < 0 {
		t.Errorf("the reload did not end with ErrStopping:\n%s", strings.Join(trace, "\n"))
	}
	if index(trace, "reloaded ") >= 0 {
		t.Errorf("a reload succeeded during the shutdown:\n%s", strings.Join(trace, "\n"))
	}
}

// copyTestBinary copies this test binary to dir/mx.test and returns its
// path, for a test that replaces or deletes it.
func copyTestBinary(t *testing.T, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(dir, "mx.test")
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// fromCopy runs a scenario from the copy at path.
func fromCopy(path string) func(*exec.Cmd) {
	return func(cmd *exec.Cmd) { cmd.Path, cmd.Args[0] = path, path }
}

// A deploy renames a new binary over the running one: the reload's new
// generation runs the new file (a script that marks its workers with
// MX_VARIANT=2 and executes the original), not the running image; so does
// a new worker's restart after a crash (it ran the parent's image).
func TestReloadRunsTheReplacedBinary(t *testing.T) {
	dir := t.TempDir()
	path := copyTestBinary(t, dir)
	p := startReload(t, "ok", fromCopy(path))
	self, _ := os.Executable()
	script := filepath.Join(dir, "new")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nMX_VARIANT=2 exec "+self+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(script, path); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGHUP)
	p.WaitFor("reloaded 2 children 2")
	p.WaitFor("log multiexit: reload done")
	_, pids := poolPIDs(p.pool())
	syscall.Kill(pids[0], syscall.SIGKILL) // a crash
	// The restarted worker's line, not a late one of the generation's
	// first two (a worker says ready after its acknowledgement, which the
	// reload's end may overtake).
	var l string
	for {
		l = p.WaitFor("ready w ")
		var pid int
		fmt.Sscanf(l, "ready w %d", &pid)
		if !slices.Contains(pids, pid) {
			break
		}
	}
	if !strings.HasSuffix(l, " gen 2 variant=2") {
		t.Errorf("the restarted worker of generation 2 said %q, want the new binary's \"... gen 2 variant=2\"", l)
	}
	p.stopWithHooks("hooks w gen 1 variant=", "hooks w gen 1 variant=", "hooks w gen 2 variant=2", "hooks w gen 2 variant=2", "H1")
}

// A reload after the binary was deleted fails cleanly: the error names
// the child and the missing file, and the old generation serves on.
func TestReloadAfterTheBinaryWasDeleted(t *testing.T) {
	path := copyTestBinary(t, t.TempDir())
	p := startReload(t, "ok", fromCopy(path))
	_, old := poolPIDs(p.pool())
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGHUP)
	failed := p.WaitFor("reload 2 failed: ")
	if !strings.Contains(failed, path) || !strings.Contains(failed, "no such file or directory") || !strings.Contains(failed, "replacing pid ") {
		t.Errorf("the error does not name the child and the file: %q", failed)
	}
	if gen, now := poolPIDs(p.pool()); gen != 1 || !slices.Equal(now, old) {
		t.Errorf("after the failed reload: gen %d pids %v, want 1 %v", gen, now, old)
	}
	p.stopWithHooks("hooks w gen 1 variant=", "hooks w gen 1 variant=", "H1")
}

// reloadNothing: a process with no supervised child (an unsupervised
// worker only) reloads and says what Reload returned and its Generation.
func reloadNothing(args []string) {
	if multiexit.IsChild() {
		mustInstall()
		select {}
	}
	mustInstall()
	mustStart(multiexit.Command())
	err := multiexit.Reload(context.Background())
	say("Reload %v generation %d", err, multiexit.Generation())
	multiexit.Exit(0)
}

// A reload with no supervised child to replace starts no generation: it
// returns nil and Generation stays 1 (a worker that calls Reload keeps
// the generation it was started in).
func TestReloadWithNothingToReplace(t *testing.T) {
	p := start(t, reloadNothing, nil)
	if got, want := p.WaitFor("Reload "), "Reload <nil> generation 1"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	if _, how := p.end(); how != exitCode(0) {
		t.Errorf("ended with %s", how)
	}
}

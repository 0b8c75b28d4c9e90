package multiexit_test

// The one budget when the stop does not begin at the top: a worker whose
// own shutdown began first still fits the time its parent gives it.

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/multiexit/multiexit"
	"github.com/multiexit/multiexit/internal/proctest"
)

func init() { scenario(stoppingWorker, pipedChild) }

// stoppingWorker: main, with the shared hook S, its hook H1 and a grace of
// 3 s, starts the worker w, and registers above that Start entry a hook
// that waits at the test's barrier: the worker is stopped only once the
// test releases it. The worker has its own hook "w old", inherits S, and
// runs first a hook that waits until its context ends. Given "exit", the
// worker calls Exit(0) on SIGUSR1. Info logs on standard error.
func stoppingWorker(args []string) {
	log := multiexit.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if multiexit.IsChild() {
		multiexit.Register(hook("w old"))
		mustInstall(log)
		multiexit.Register(func(ctx context.Context) error {
			say("w slow begins")
			<-ctx.Done()
			say("w slow ends")
			return nil
		})
		if args[1] == "exit" {
			usr1 := make(chan os.Signal, 1)
			signal.Notify(usr1, syscall.SIGUSR1)
			go func() {
				<-usr1
				multiexit.Exit(0)
			}()
		}
		sayReady("w")
		select {}
	}
	mustInstall(log, multiexit.WithGrace(3*time.Second))
	sharedS.Register("s")
	multiexit.Register(hook("H1"))
	mustStart(multiexit.Command("w", args[0]))
	multiexit.Register(func(context.Context) error {
		barrierWait("main")
		say("main above")
		return nil
	})
	sayReady("main")
	select {}
}

// A worker whose shutdown began before its parent's stop (it called Exit,
// it got SIGTERM from elsewhere, or every process of the tree got SIGTERM
// at once) still obeys the parent's later, shorter grace (3 s, against
// its own deadline of 20 s): its running hook's context ends in time, and
// its older and inherited hooks run before the parent's SIGKILL. (With a
// grace of 1 s they have 80 ms, which a loaded machine does not always
// give.)
func TestWorkerAlreadyStoppingObeysItsParent(t *testing.T) {
	for _, how := range []string{"exit", "term", "unit"} {
		t.Run(how, func(t *testing.T) {
			b, env := newBarrier(t)
			p := start(t, stoppingWorker, []string{how}, env)
			w := p.PIDs("ready main", "ready w")["ready w"]
			switch how {
			case "exit":
				syscall.Kill(w, syscall.SIGUSR1)
				p.Signal(syscall.SIGTERM)
			case "term":
				syscall.Kill(w, syscall.SIGTERM)
				p.Signal(syscall.SIGTERM)
			case "unit":
				everyProcess(t, p, syscall.SIGTERM)
			}
			p.WaitFor("w slow begins")
			b.wait(1)   // main runs its hook above the Start entry
			b.release() // and now stops the worker, which is stopping
			trace, ended := p.end()
			want := []string{"w slow begins", "main above", "w slow ends", "w old", "w S(s)", "H1", "main S(s)"}
			if diff := cmp.Diff(want, trace); diff != "" || ended != diedOf(syscall.SIGTERM) {
				t.Errorf("ended with %s; trace (-want +got):\n%s\nstderr:\n%s", ended, diff, p.Stderr.String())
			}
		})
	}
}

// pipedChild starts, n times, a command whose output it reads through
// StdoutPipe only once the command has exited (a zombie: Start's reaper
// could have waited for it), reads it to its end, and says how many lines
// came and what the read and Child.Wait said. Then it checks the command's
// own Wait: refused at once, with Child.Wait's status afterwards.
func pipedChild(args []string) {
	mustInstall()
	lost := 0
	for range 20 {
		cmd := exec.Command("seq", "3000")
		out, err := cmd.StdoutPipe()
		if err != nil {
			panic(err)
		}
		kid := mustStart(cmd)[0]
		proctest.WaitExited(kid.PID())
		n := 0
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			n++
		}
		if n != 3000 || sc.Err() != nil {
			lost++
			say("read %d lines of 3000: %v", n, sc.Err())
		}
		if err := kid.Wait(); err != nil {
			say("Child.Wait: %v", err)
		}
	}
	say("runs that lost lines: %d", lost)

	cmd := exec.Command("sh", "-c", "exit 7")
	kid := mustStart(cmd)[0]
	say("cmd.Wait: %v", cmd.Wait())
	say("Child.Wait: %v", kid.Wait())
	say("ProcessState: %v", cmd.ProcessState)

	// A piped child still running at the shutdown: its entry's stop ends
	// it and closes the pipe, and the reader ends.
	ended := make(chan struct{})
	multiexit.Register(func(context.Context) error {
		<-ended
		say("the reader ended")
		return nil
	})
	long := exec.Command("sh", "-c", "echo first; exec sleep 1000")
	out, err := long.StdoutPipe()
	if err != nil {
		panic(err)
	}
	mustStart(long)
	sc := bufio.NewScanner(out)
	sc.Scan()
	say("read %q", sc.Text())
	go func() {
		for sc.Scan() {
			say("read %q", sc.Text())
		}
		close(ended)
	}()
	multiexit.Exit(0)
}

// Start keeps os/exec's contract for pipes: every line reaches the reader
// of StdoutPipe, however late it reads, and the pipe closes on Child.Wait.
// The command's own Wait is refused at once, with exec's "Wait was already
// called", instead of racing Start's reaper (run under -race); afterwards
// ProcessState is the child's. The entry's stop ends a piped child that
// still runs, and its reader.
func TestStartKeepsPipesUntilWait(t *testing.T) {
	p := start(t, pipedChild, nil)
	p.check([]string{
		"runs that lost lines: 0",
		"cmd.Wait: exec: Wait was already called",
		"Child.Wait: exit status 7",
		"ProcessState: exit status 7",
		`read "first"`,
		"the reader ended",
	}, exitCode(0))
}

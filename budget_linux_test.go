package multiexit_test

// The one budget when the stop does not begin at the top: a worker whose
// own shutdown began first still fits the time its parent gives it.

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/multiexit/multiexit"
)

func init() { scenario(stoppingWorker) }

// stoppingWorker: main, with the shared hook S, its hook H1 and a grace of
// 1 s, starts the worker w, and registers above that Start entry a hook
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
	mustInstall(log, multiexit.WithGrace(time.Second))
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
// at once) still obeys the parent's later, shorter grace (1 s, against
// its own deadline of 20 s): its running hook's context ends in time, and
// its older and inherited hooks run before the parent's SIGKILL.
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

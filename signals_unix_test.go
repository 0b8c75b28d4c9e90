//go:build unix

package multiexit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiexit/multiexit"
)

func init() { scenario(runSignal, escalate, onlyConfigured, ignoredInt, exitThenSignal) }

// signalWhenReady reads lines until one starting with each of ready was
// seen, then sends sig to the process.
func (p *proc) signalWhenReady(sig syscall.Signal, ready ...string) {
	p.t.Helper()
	p.WaitAll(ready...)
	p.Signal(sig)
}

// diedOf is how a process that sig killed ended, as proctest.How says it.
func diedOf(sig syscall.Signal) string { return "signal " + sig.String() }

func TestSignalRunsHooksLIFO(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			p := start(t, lifo, nil)
			p.signalWhenReady(sig, "ready")
			p.check([]string{"C", "B", "A"}, diedOf(sig))
			p.Quiet()
		})
	}
}

// runSignal: Run's main waits for its context to end and says the cause;
// given an argument, it then returns an error.
func runSignal(args []string) {
	multiexit.Register(hook("A"))
	multiexit.Run(func(ctx context.Context) error {
		say("ready")
		<-ctx.Done()
		say("cause %v", context.Cause(ctx))
		if len(args) > 0 {
			return errors.New("main failed after the signal")
		}
		return nil
	})
}

func TestRunContextCause(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{{"main returns nil", nil}, {"main returns an error", []string{"err"}}} {
		t.Run(tc.name, func(t *testing.T) {
			p := start(t, runSignal, tc.args)
			p.signalWhenReady(syscall.SIGTERM, "ready")
			p.check([]string{"cause received signal terminated", "A"}, diedOf(syscall.SIGTERM))
		})
	}
}

// escalate: hook A, and hook S that waits for its context to end, under an
// hour's deadline.
func escalate(args []string) {
	multiexit.Register(hook("A"))
	multiexit.Register(func(ctx context.Context) error {
		say("S")
		<-ctx.Done()
		return nil
	})
	if err := multiexit.Install(multiexit.WithTimeout(time.Hour)); err != nil {
		panic(err)
	}
	say("ready")
	select {}
}

func TestSecondSignalEscalates(t *testing.T) {
	for _, storm := range []int{1, 1000} {
		t.Run(fmt.Sprintf("%d more signals", storm), func(t *testing.T) {
			p := start(t, escalate, nil)
			p.signalWhenReady(syscall.SIGTERM, "ready")
			p.WaitFor("S")
			for i := 0; i < storm; i++ {
				sig := syscall.SIGINT
				if i%2 == 1 {
					sig = syscall.SIGTERM
				}
				if err := p.Cmd.Process.Signal(sig); err != nil {
					break // it has exited already
				}
			}
			p.check([]string{"S", "A"}, diedOf(syscall.SIGTERM))
			if !strings.Contains(p.Stderr.String(), "second signal") {
				t.Errorf("stderr does not report the escalation:\n%s", p.Stderr.String())
			}
		})
	}
}

// exitThenSignal: Exit(0) with two hooks: the first says whether its
// context is still live, the second waits for the test (standard input's
// end). multiexit's Info log goes to standard output, without the time.
func exitThenSignal(args []string) {
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	if err := multiexit.Install(multiexit.WithLogger(log)); err != nil {
		panic(err)
	}
	multiexit.Register(func(ctx context.Context) error {
		say("after: context: %v", ctx.Err())
		return nil
	})
	multiexit.Register(func(ctx context.Context) error {
		say("waiting")
		io.ReadAll(os.Stdin)
		return nil
	})
	multiexit.Exit(0)
}

// The first signal after Exit began the shutdown (a batch job that exits
// as systemd stops it) is not an escalation: the hooks keep their deadline
// and the process exits with Exit's code. Only a second signal escalates.
func TestFirstSignalAfterExitIsNoEscalation(t *testing.T) {
	var stdin io.WriteCloser
	p := startWith(t, func(cmd *exec.Cmd) {
		var err error
		if stdin, err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
	}, exitThenSignal, nil)
	p.WaitFor("waiting")
	p.Signal(syscall.SIGTERM)
	p.WaitFor(`level=INFO msg="multiexit: signal during the shutdown: not an escalation`)
	stdin.Close()
	p.WaitFor("after: ")
	trace, how := p.end()
	all := strings.Join(trace, "\n")
	if how != exitCode(0) || !slices.Contains(trace, "after: context: <nil>") || strings.Contains(all, "level=WARN") || strings.Contains(all, "level=ERROR") {
		t.Errorf("ended with %s; want exit 0, the hooks in their deadline, no warning; output:\n%s\nstderr:\n%s", how, all, p.Stderr.String())
	}
}

// onlyConfigured: hook A, installed for SIGTERM only.
func onlyConfigured(args []string) {
	multiexit.Register(hook("A"))
	if err := multiexit.Install(multiexit.WithSignals(syscall.SIGTERM)); err != nil {
		panic(err)
	}
	say("ready")
	select {}
}

func TestOnlyConfiguredSignalsAreCaught(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			if signal.Ignored(sig) {
				// Inherited ignored (nohup, a background job), it stays
				// ignored in the scenario (TestIgnoredInterruptStaysIgnored):
				// the signal would be discarded and the test wait for ever.
				t.Skipf("%v is ignored here, and so in the scenario: run the tests without nohup, in the foreground", sig)
			}
			p := start(t, onlyConfigured, nil)
			p.signalWhenReady(sig, "ready")
			p.check(nil, "signal "+sig.String())
		})
	}
}

// ignoredInt: hook A, installed with the default signals, or with SIGINT
// and SIGTERM named (an argument).
func ignoredInt(args []string) {
	multiexit.Register(hook("A"))
	var opts []multiexit.Option
	if len(args) > 0 {
		opts = append(opts, multiexit.WithSignals(os.Interrupt, syscall.SIGTERM))
	}
	if err := multiexit.Install(opts...); err != nil {
		panic(err)
	}
	say("ready")
	select {}
}

// A process started with SIGINT ignored (nohup, `sh -c 'prog &'`) keeps it
// ignored, unless WithSignals names it.
func TestIgnoredInterruptStaysIgnored(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{{"default", nil, diedOf(syscall.SIGTERM)}, {"WithSignals names it", []string{"explicit"}, diedOf(syscall.SIGINT)}} {
		t.Run(tc.name, func(t *testing.T) {
			// Run it under a shell that ignores SIGINT, as nohup or
			// `sh -c 'prog &'` would.
			p := startWith(t, func(cmd *exec.Cmd) {
				cmd.Args = append([]string{"sh", "-c", `trap "" INT; exec "$0" "$@"`, cmd.Path}, tc.args...)
				cmd.Path = "/bin/sh"
			}, ignoredInt, tc.args)
			p.WaitFor("ready")
			// An ignored signal is discarded when it is sent, so if
			// SIGINT stayed ignored, SIGTERM decides; if caught, SIGINT.
			p.Signal(syscall.SIGINT)
			if tc.args == nil {
				p.Signal(syscall.SIGTERM)
			}
			p.check([]string{"A"}, tc.want)
		})
	}
}

// A shell script loop stops when its multiexit child is stopped by the
// terminal's Ctrl-C: bash sees the child die by SIGINT (as it also got
// SIGINT) and ends the loop, as it does for any program that Ctrl-C
// kills. A child that exited 130 instead would let the loop go on.
func TestBashStopsALoopAfterCtrlC(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	p := startWith(t, func(cmd *exec.Cmd) {
		cmd.Args = []string{"bash", "-c", `for i in 1 2; do "$0"; echo "after $i: status $?"; export ` + scenarioEnv(exitHooks) + `; done`, cmd.Path}
		cmd.Path = bash
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // as a terminal's job
	}, lifo, nil)
	p.WaitFor("ready")
	// The terminal's Ctrl-C: SIGINT to the foreground process group.
	if err := syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	p.check([]string{"C", "B", "A"}, diedOf(syscall.SIGINT))
}

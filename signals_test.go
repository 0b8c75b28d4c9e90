package multiexit_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/multiexit/multiexit"
)

func init() {
	scenario(lifo, exitHooks, runMain, unregister, failing, hang, twice, inside, logger, watcher)
}

// hook returns a hook that prints name.
func hook(name string) func(context.Context) error {
	return func(context.Context) error {
		say("%s", name)
		return nil
	}
}

func failingHook(context.Context) error {
	say("F")
	return errors.New("disk full")
}

func panickingHook(context.Context) error {
	say("P")
	panic("oops")
}

func hangingHook(context.Context) error {
	say("H")
	select {}
}

func hangingHook2(context.Context) error {
	say("H2")
	select {}
}

// lifo registers the hooks A, B and C, installs, says "ready" and waits.
func lifo(args []string) {
	multiexit.Register(hook("A"))
	multiexit.Register(hook("B"))
	multiexit.Register(hook("C"))
	if err := multiexit.Install(); err != nil {
		panic(err)
	}
	say("ready")
	select {}
}

// exitHooks registers A and B and calls Exit(7), installed unless it has an
// argument.
func exitHooks(args []string) {
	multiexit.Register(hook("A"))
	multiexit.Register(hook("B"))
	if len(args) == 0 {
		if err := multiexit.Install(); err != nil {
			panic(err)
		}
	}
	multiexit.Exit(7)
}

func TestExit(t *testing.T) {
	t.Run("installed", func(t *testing.T) {
		p := start(t, exitHooks, nil)
		p.check([]string{"B", "A"}, exitCode(7))
		p.Quiet()
	})
	t.Run("without Install", func(t *testing.T) {
		p := start(t, exitHooks, []string{"noinstall"})
		p.check([]string{"B", "A"}, exitCode(7))
		p.Quiet()
	})
}

// runMain: hook A, and Run's main returns nil, an error or panics, as
// args[0] says.
func runMain(args []string) {
	multiexit.Register(hook("A"))
	multiexit.Run(func(ctx context.Context) error {
		say("main")
		switch args[0] {
		case "error":
			return errors.New("boom")
		case "panic":
			panic("kaboom")
		}
		return nil
	})
}

func TestRunExitCodes(t *testing.T) {
	for _, tc := range []struct {
		mode   string
		code   int
		stderr []string
	}{
		{"nil", 0, nil},
		{"error", 1, []string{"boom"}},
		{"panic", 2, []string{"kaboom", "goroutine"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			p := start(t, runMain, []string{tc.mode})
			p.check([]string{"main", "A"}, exitCode(tc.code))
			if tc.stderr == nil {
				p.Quiet()
			}
			for _, s := range tc.stderr {
				if !strings.Contains(p.Stderr.String(), s) {
					t.Errorf("stderr does not report %q:\n%s", s, p.Stderr.String())
				}
			}
		})
	}
}

// unregister unregisters a hook twice, a nil hook, and, from inside a hook,
// one yet to run and one that ran.
func unregister(args []string) {
	a := multiexit.Register(hook("A"))
	say("unregister A: %v", a.Unregister())
	say("unregister A again: %v", a.Unregister())
	n := multiexit.Register(nil)
	say("unregister nil hook: %v", n.Unregister())
	var top *multiexit.Handle
	multiexit.Register(hook("bottom"))
	b := multiexit.Register(hook("B"))
	multiexit.Register(func(context.Context) error {
		say("C: unregister B: %v; unregister top, which ran: %v", b.Unregister(), top.Unregister())
		return nil
	})
	top = multiexit.Register(hook("top"))
	if err := multiexit.Install(); err != nil {
		panic(err)
	}
	multiexit.Exit(0)
}

func TestUnregister(t *testing.T) {
	p := start(t, unregister, nil)
	p.check([]string{
		"unregister A: true",
		"unregister A again: false",
		"unregister nil hook: false",
		"top",
		"C: unregister B: true; unregister top, which ran: false",
		"bottom",
	}, exitCode(0))
	p.Quiet()
}

// failing: a hook that fails and one that panics between A and B, then
// Exit(3).
func failing(args []string) {
	multiexit.Register(hook("A"))
	multiexit.Register(failingHook)
	multiexit.Register(panickingHook)
	multiexit.Register(hook("B"))
	multiexit.Exit(3)
}

func TestFailingHooksAreReportedAndTheRestRun(t *testing.T) {
	p := start(t, failing, nil)
	p.check([]string{"B", "P", "F", "A"}, exitCode(3))
	for _, s := range []string{"panickingHook", "oops", "failingHook", "disk full", "signals_test.go"} {
		if !strings.Contains(p.Stderr.String(), s) {
			t.Errorf("stderr does not name %q:\n%s", s, p.Stderr.String())
		}
	}
}

// hang: two hooks that hang among three that say whether they have a
// deadline, under a short WithTimeout.
func hang(args []string) {
	deadline := func(name string) func(context.Context) error {
		return func(ctx context.Context) error {
			_, ok := ctx.Deadline()
			say("%s has deadline: %v", name, ok)
			return nil
		}
	}
	multiexit.Register(deadline("Z"))
	multiexit.Register(hangingHook2)
	multiexit.Register(deadline("A"))
	multiexit.Register(hangingHook)
	multiexit.Register(deadline("C"))
	if err := multiexit.Install(multiexit.WithTimeout(300 * time.Millisecond)); err != nil {
		panic(err)
	}
	multiexit.Exit(0)
}

func TestHangingHooksAreAbandoned(t *testing.T) {
	p := start(t, hang, nil)
	p.check([]string{"C has deadline: true", "H", "A has deadline: true", "H2", "Z has deadline: true"}, exitCode(0))
	for _, s := range []string{"hangingHook ", "hangingHook2", "abandoned"} {
		if !strings.Contains(p.Stderr.String(), s) {
			t.Errorf("stderr does not name %q:\n%s", s, p.Stderr.String())
		}
	}
}

// twice calls Install twice.
func twice(args []string) {
	if err := multiexit.Install(); err != nil {
		panic(err)
	}
	say("second Install: %v", multiexit.Install())
	multiexit.Exit(0)
}

func TestInstallTwice(t *testing.T) {
	p := start(t, twice, nil)
	p.check([]string{"second Install: multiexit: Install called twice"}, exitCode(0))
}

// inside: hooks that call Exit and Register while the hooks run.
func inside(args []string) {
	multiexit.Register(hook("A"))
	multiexit.Register(func(context.Context) error {
		say("X")
		multiexit.Exit(9)
		say("X after Exit")
		return nil
	})
	multiexit.Register(func(context.Context) error {
		say("R")
		multiexit.Register(hook("N"))
		return nil
	})
	if err := multiexit.Install(); err != nil {
		panic(err)
	}
	multiexit.Exit(4)
}

func TestRegisterAndExitInsideHooks(t *testing.T) {
	p := start(t, inside, nil)
	p.check([]string{"R", "N", "X", "A"}, exitCode(4))
	p.Quiet()
}

// logger: a failing hook and A, logged as JSON to standard error.
func logger(args []string) {
	multiexit.Register(failingHook)
	multiexit.Register(hook("A"))
	if err := multiexit.Install(multiexit.WithLogger(slog.New(slog.NewJSONHandler(os.Stderr, nil)))); err != nil {
		panic(err)
	}
	multiexit.Exit(0)
}

func TestLoggerReportsProgress(t *testing.T) {
	p := start(t, logger, nil)
	p.check([]string{"A", "F"}, exitCode(0))
	errLog := p.Stderr.String()
	for _, s := range []string{`"msg":"multiexit: hook done"`, `"duration":`, `"msg":"multiexit: hook failed"`, `failingHook`, `"msg":"multiexit: shutdown begins"`, `"msg":"multiexit: exiting"`} {
		if !strings.Contains(errLog, s) {
			t.Errorf("log lacks %s:\n%s", s, errLog)
		}
	}
}

// watcher: a hook that returns when its context's deadline passes.
func watcher(args []string) {
	multiexit.Register(func(ctx context.Context) error {
		<-ctx.Done() // returns as soon as the deadline passes
		say("watcher returned")
		return nil
	})
	if err := multiexit.Install(multiexit.WithTimeout(100 * time.Millisecond)); err != nil {
		panic(err)
	}
	multiexit.Exit(0)
}

// A hook that returns as soon as its context ends is not abandoned.
func TestHookWatchingTheDeadlineIsNotAbandoned(t *testing.T) {
	p := start(t, watcher, nil)
	p.check([]string{"watcher returned"}, exitCode(0))
	p.Quiet()
}

//go:build unix

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/multiexit/multiexit/internal/contain"
	"github.com/multiexit/multiexit/internal/errout"
	"github.com/multiexit/multiexit/internal/sdnotify"

	"github.com/multiexit/multiexit"
)

// Exit statuses of multiexit itself, as GNU timeout and env use them.
const (
	statusTimeout    = 124 // -timeout fired
	statusFailed     = 125 // multiexit itself failed (flags, no COMMAND, Start)
	statusNotExec    = 126 // COMMAND was found but could not be executed
	statusNotFound   = 127 // COMMAND was not found
	defaultGrace     = 5 * time.Second
	shutdownReserve  = 5 * time.Second // the deadline beyond two grace periods
	forwardedBufSize = 64
)

type options struct {
	timeout time.Duration
	grace   time.Duration
	group   bool
	remap   map[int]bool
	verbose bool
	args    []string
}

// stderr is where multiexit itself reports: a duplicate of descriptor 2,
// so that with COMMAND's output piped to a reader that is gone
// (multiexit -- cmd 2>&1 | head -1) a line of multiexit's does not kill it
// by SIGPIPE before it stopped COMMAND's tree (see internal/errout), nor
// raise a SIGPIPE that multiexit would forward (see quietStderr).
var stderr = quietStderr(errout.Dup())

func main() {
	runShim()
	caller := callerSignals() // before anything changes them
	o, err := parse(os.Args[1:], os.Stdout)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintf(stderr, "multiexit: %v\nTry 'multiexit -h' for more information.\n", err)
		os.Exit(statusFailed)
	}
	run(o, caller)
}

// parse reads the flags; usage goes to out.
func parse(args []string, out io.Writer) (options, error) {
	o := options{grace: defaultGrace, remap: map[int]bool{}}
	fl := flag.NewFlagSet("multiexit", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	fl.Var((*durationFlag)(&o.timeout), "timeout", "")
	fl.Var((*durationFlag)(&o.grace), "grace", "")
	fl.BoolVar(&o.group, "g", false, "")
	fl.Var(remapFlag(o.remap), "e", "")
	fl.BoolVar(&o.verbose, "v", false, "")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			io.WriteString(out, usage)
		}
		return o, err
	}
	o.args = fl.Args()
	if len(o.args) == 0 {
		return o, errors.New("no COMMAND given")
	}
	return o, nil
}

// remapFlag collects the exit codes of -e.
type remapFlag map[int]bool

func (r remapFlag) String() string { return "" }

func (r remapFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 255 {
		return fmt.Errorf("not an exit code (0 to 255): %q", s)
	}
	r[n] = true
	return nil
}

// run runs COMMAND under multiexit and never returns; caller is the
// signal configuration multiexit was started with.
func run(o options, caller callerConfig) {
	// Catch the forwarded signals before COMMAND starts, so that none sent
	// while it starts is lost. Those multiexit was started with ignored
	// (nohup, a shell's background job, trap '' PIPE) stay ignored, for
	// COMMAND too. Catching them takes a while (the Go runtime's signal
	// thread is woken for each), so it runs beside Install and the
	// containment's start, and COMMAND waits for it.
	sigs := make(chan os.Signal, forwardedBufSize)
	caught := make(chan struct{})
	go func() {
		catchSignals(sigs, caller)
		close(caught)
	}()
	log := logger(o.verbose)
	grace := max(o.grace, time.Nanosecond) // -grace 0: SIGKILL at once
	// multiexit catches the signals itself: the library catches none, and
	// its shutdown begins when COMMAND has ended (or at -timeout). Its
	// deadline leaves room for two grace periods: COMMAND's group, then
	// the escapees.
	err := multiexit.Install(
		multiexit.WithSignals(),
		multiexit.WithGrace(grace),
		multiexit.WithTimeout(2*grace+shutdownReserve),
		multiexit.WithLogger(log),
	)
	if err != nil {
		fmt.Fprintf(stderr, "multiexit: %v\n", err)
		multiexit.Exit(statusFailed)
	}
	// On the cgroup layer, the tree's cgroup and its guardian (this binary
	// started again) are made now, beside the rest of this start, rather
	// than by Start below, which waits for them.
	contain.Prepare()

	var commandPID atomic.Int64 // COMMAND's, once it runs: the relay's check needs it
	notifySocket, err := relayNotify(log, func() int { return int(commandPID.Load()) })
	if err != nil {
		log.Warn("multiexit: cannot relay COMMAND's notifications to systemd", "err", err)
	}
	dir := leaveWorkingDir(log)
	command := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		if errors.Is(cmd.Err, exec.ErrDot) {
			cmd.Err = nil // found through a relative PATH entry: run it, as env and a shell do
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if notifySocket != "" {
			cmd.Env = sdnotify.RelayEnv(os.Environ(), notifySocket)
		}
		// Under a terminal COMMAND gets its foreground, as a shell gives
		// a job: it can read the terminal, and Ctrl-C and Ctrl-\ go to
		// its process group straight from the terminal.
		return multiexit.Foreground(passOn(cmd, caller))
	}
	<-caught // and passOn compares what is ignored now with the caller's
	cmd := command(o.args[0], o.args[1:]...)
	kids, err := multiexit.Start(cmd)
	if errors.Is(err, syscall.ENOEXEC) {
		// A file without a #! line: /bin/sh runs it, as execvp(3) does for
		// tini, dumb-init and GNU timeout.
		cmd = command("/bin/sh", append([]string{cmd.Path}, o.args[1:]...)...)
		kids, err = multiexit.Start(cmd)
	}
	if err != nil {
		code, reason := startFailure(o.args[0], err)
		fmt.Fprintf(stderr, "multiexit: %s: %v\n", quoteName(o.args[0]), reason)
		multiexit.Exit(code)
	}
	child := kids[0]
	commandPID.Store(int64(child.PID()))
	log.Info("multiexit: started", "pid", child.PID(), "cmd", o.args, "containment", multiexit.Containment().String(),
		"ignored", caller.ignored.String(), "blocked", caller.blocked.String(), "exact", caller.exact, "shim", cmd.Path == "/proc/self/exe")

	exited := make(chan struct{})
	go func() {
		child.Wait()
		close(exited)
	}()
	var limit, bound <-chan time.Time
	if o.timeout > 0 {
		limit = time.After(o.timeout)
	}
	send := child.Signal
	if o.group {
		send = child.SignalGroup
	}
	for {
		select {
		case <-exited:
			ps := cmd.ProcessState
			log.Info("multiexit: COMMAND exited; stopping what it left", "pid", child.PID(), "status", ps.String())
			if ps.Exited() && o.remap[ps.ExitCode()] {
				multiexit.Exit(0)
			}
			multiexit.ExitAs(ps)
		case <-limit:
			log.Info("multiexit: -timeout fired; stopping the tree", "timeout", o.timeout)
			multiexit.Exit(statusTimeout)
		case s := <-sigs:
			var err error
			if isJobControl(s) {
				err = jobControl(s, child.SignalGroup)
			} else {
				err = send(s)
			}
			log.Info("multiexit: forwarded a signal", "signal", s.String(), "pid", child.PID(), "group", o.group, "err", errString(err))
			if (s == syscall.SIGTERM || s == syscall.SIGINT) && bound == nil {
				// COMMAND has the grace period to exit; then its group is
				// killed, and the rest of the tree stopped as it exits.
				// Under systemd, the stop begins now: say so, and how long
				// it may take (COMMAND's grace, then the tree's stop).
				notifyStopping(grace + 2*grace + shutdownReserve)
				bound = time.After(grace)
			}
		case <-bound:
			log.Warn("multiexit: COMMAND did not exit within the grace period after the signal; killing its process group",
				"pid", child.PID(), "grace", grace)
			child.SignalGroup(syscall.SIGKILL)
			bound = nil
		}
	}
}

// leaveWorkingDir moves multiexit to "/", as dumb-init and catatonit do,
// so that a tree that runs for days does not keep its directory busy
// through multiexit or its guardian (an unmount, a removed directory), and
// returns the directory COMMAND starts in: the one multiexit was started
// in. It does nothing if that cannot be known.
func leaveWorkingDir(log *slog.Logger) string {
	wd, err := os.Getwd()
	if err != nil {
		log.Warn("multiexit: working directory unknown; staying in it", "err", err)
		return ""
	}
	if err := os.Chdir("/"); err != nil {
		log.Warn("multiexit: cannot leave the working directory", "dir", wd, "err", err)
		return ""
	}
	return wd
}

// logger is the library's logger: with -v every event at Info, else only
// warnings and errors.
func logger(verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	h := slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	if verbose {
		return slog.New(h)
	}
	return slog.New(quietHandler{h})
}

// quietHandler drops the library's warning that a child exited by itself:
// for multiexit that is COMMAND ending, which is the normal way.
type quietHandler struct{ slog.Handler }

func (q quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "multiexit: child exited before it was stopped" {
		return nil
	}
	return q.Handler.Handle(ctx, r)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

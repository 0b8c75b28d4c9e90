// Command cascade shows an ordered shutdown down a chain of workers:
// main starts worker 1, which starts worker 2, which starts worker 3 (each
// one this binary, re-executed by multiexit.Command). Each process stops
// the next one in the LIFO place of its Start call, and the shared hook
// "goodbye", registered once in main, runs last in every process.
//
//	go run ./examples/cascade    # builds the chain, shuts it down; exit 0
//
// Every line goes through main, which reads the chain's output: that is how
// it knows that worker 3 is up, and it numbers the hooks in the order they
// ran. A worker says it is up once its own Start call has returned (a Start
// returns only once its worker is ready to run its hooks, and one still
// waiting when the shutdown begins returns an error instead), so the
// shutdown may begin once every worker is up; they say so in any order:
//
//	worker 3 (pid 103): up
//	worker 2 (pid 102): up
//	worker 1 (pid 101): up
//	main: the chain is up; main returns, the exit hooks run
//	 1. main: stopping worker 1
//	 2. worker 1: stopping worker 2
//	 3. worker 2: stopping worker 3
//	 4. worker 3: own hook
//	 5. worker 3: goodbye from the cascade
//	 6. worker 2: worker 3 has stopped (signal: terminated)
//	 7. worker 2: goodbye from the cascade
//	 8. worker 1: worker 2 has stopped (signal: terminated)
//	 9. worker 1: goodbye from the cascade
//	10. main: worker 1 has stopped (signal: terminated)
//	11. main: goodbye from the cascade
//
// A worker stopped by its parent dies by SIGTERM, after its hooks; main exits 0.
//
// With -serve, main waits for SIGTERM or Ctrl-C once the chain is up (and
// tells systemd it is ready: run it as a Type=notify unit), and dies by it
// after the hooks. With -slow, worker 3 also has a hook that takes all the
// time its parent gives it (it waits until its context ends): stopped all
// at once, as systemd's default KillMode=control-group stops a unit, every
// worker begins its shutdown with its own 20 s deadline, and each must
// still fit the shorter time its parent gives it when its parent's stop
// comes, so that every hook of every level runs:
//
//	go run ./examples/cascade -serve -slow    # then Ctrl-C
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/multiexit/multiexit"
)

const depth = 3

// goodbye is defined at package level, so that every worker, which runs
// this same binary, knows it by name.
var goodbye = multiexit.Define("goodbye", func(ctx context.Context, from string) error {
	hookf("%s: goodbye from %s", me(), from)
	return nil
})

var (
	serve = flag.Bool("serve", false, "once the chain is up, wait for SIGTERM or Ctrl-C (and tell systemd READY=1)")
	slow  = flag.Bool("slow", false, "worker 3 has a hook that waits until its context ends")
)

func main() {
	if multiexit.IsChild() {
		worker() // never returns
	}
	flag.Parse()
	goodbye.Register("the cascade") // inherited by worker 1, and by it to worker 2, …

	// The chain writes to a pipe that main reads: a line at a time, it
	// numbers the hook lines and sees when worker 3 is ready.
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ready, relayed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(relayed)
		up := 0
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, "hook: "); ok {
				hookf("%s", rest)
				continue
			}
			say("%s", line)
			if strings.HasPrefix(line, "worker ") && strings.HasSuffix(line, ": up") {
				if up++; up == depth {
					close(ready)
				}
			}
		}
	}()

	multiexit.Run(func(ctx context.Context) error {
		err := startNext(w, relayed)
		w.Close() // main's copy: the pipe ends when the chain has exited
		if err != nil {
			return err
		}
		select {
		case <-ready:
		case <-relayed:
			return errors.New("the chain ended before every worker was up")
		case <-ctx.Done():
			return nil
		}
		if *serve {
			say("main: the chain is up; waiting for a signal")
			multiexit.Ready()
			<-ctx.Done()
			return nil
		}
		say("main: the chain is up; main returns, the exit hooks run")
		return nil
	})
}

func worker() {
	if level() == depth {
		multiexit.Register(func(ctx context.Context) error {
			hookf("%s: own hook", me())
			return nil
		})
		if len(os.Args) > 2 && os.Args[2] == "-slow" {
			multiexit.Register(func(ctx context.Context) error {
				hookf("%s: slow hook: waits until its context ends", me())
				<-ctx.Done() // as a hook that drains until told to stop
				hookf("%s: slow hook: its context ended", me())
				return nil
			})
		}
	}
	multiexit.Run(func(ctx context.Context) error {
		if level() < depth {
			// After Install (in Run): the next worker inherits "goodbye".
			if err := startNext(nil, nil); err != nil {
				return err
			}
		}
		say("%s (pid %d): up", me(), os.Getpid())
		<-ctx.Done() // until the previous process stops this one
		return nil
	})
}

// startNext starts the next worker of the chain, with stdout as its
// standard output if not nil, between two hooks: the one registered after
// Start runs before the Start call's entry stops the worker, the one
// registered before runs after it. If relayed is not nil, that hook first
// waits for it to be closed.
func startNext(stdout *os.File, relayed <-chan struct{}) error {
	next := level() + 1
	var child *multiexit.Child
	multiexit.Register(func(ctx context.Context) error {
		if relayed != nil {
			select {
			case <-relayed: // every line of the chain has been printed
			case <-ctx.Done():
			}
		}
		if child != nil {
			hookf("%s: worker %d has stopped (%v)", me(), next, child.Wait())
		}
		return nil
	})
	args := []string{strconv.Itoa(next)}
	if *slow || len(os.Args) > 2 && os.Args[2] == "-slow" {
		args = append(args, "-slow")
	}
	cmd := multiexit.Command(args...)
	if stdout != nil {
		cmd.Stdout = stdout
	}
	kids, err := multiexit.Start(cmd)
	if err != nil {
		return err
	}
	child = kids[0]
	multiexit.Register(func(ctx context.Context) error {
		hookf("%s: stopping worker %d", me(), next)
		return nil
	})
	return nil
}

// level is 0 in main, n in worker n.
func level() int {
	if !multiexit.IsChild() || len(os.Args) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(os.Args[1])
	return n
}

func me() string {
	if n := level(); n > 0 {
		return fmt.Sprintf("worker %d", n)
	}
	return "main"
}

var step atomic.Int32

// hookf prints a hook's line. Main numbers it; a worker marks it, for main
// to number.
func hookf(format string, args ...any) {
	if multiexit.IsChild() {
		say("hook: "+format, args...)
		return
	}
	say("%2d. "+format, append([]any{step.Add(1)}, args...)...)
}

// say prints one line in a single write: the processes share the pipe.
func say(format string, args ...any) {
	os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n")
}

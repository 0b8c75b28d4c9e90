// Command hooks shows exit hooks running in LIFO order (newest first) on
// every way a program ends: a normal return, Ctrl-C and SIGTERM.
//
// It registers three hooks, in the order a program acquires what they
// release, then runs its main through multiexit.Run.
//
//	go run ./examples/hooks          # main returns nil: hooks 3, 2, 1; exit 0
//	go run ./examples/hooks -wait    # waits for a signal:
//	                                 #   Ctrl-C        -> hooks 3, 2, 1; dies by SIGINT (shell: 130)
//	                                 #   kill -TERM    -> hooks 3, 2, 1; dies by SIGTERM (shell: 143)
//
// A sample run:
//
//	$ go run ./examples/hooks
//	registered hook 1: close the database
//	registered hook 2: flush the log
//	registered hook 3: remove the pid file
//	main: done, returning nil
//	hook 3: remove the pid file
//	hook 2: flush the log
//	hook 1: close the database
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/multiexit/multiexit"
)

func main() {
	wait := flag.Bool("wait", false, "wait for Ctrl-C or SIGTERM instead of returning")
	flag.Parse()

	// Hooks may be registered before Run (or Install), for example in init.
	for i, what := range []string{"close the database", "flush the log", "remove the pid file"} {
		multiexit.Register(func(ctx context.Context) error {
			say("hook %d: %s", i+1, what)
			return nil
		})
		say("registered hook %d: %s", i+1, what)
	}

	multiexit.Run(func(ctx context.Context) error {
		if !*wait {
			say("main: done, returning nil")
			return nil
		}
		say("ready: pid %d; press Ctrl-C or run: kill -TERM %d", os.Getpid(), os.Getpid())
		<-ctx.Done()
		// The cause is the signal; Run exits with 128+signal whatever main
		// returns.
		say("main: %v", context.Cause(ctx))
		return nil
	})
}

// say prints one line in a single write.
func say(format string, args ...any) {
	os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n")
}

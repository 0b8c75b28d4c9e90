// Command timeout runs a command with a time limit, like timeout(1), and
// when the limit expires stops the command and everything it started:
// SIGTERM to its process group, then SIGKILL after the grace period.
//
//	go run ./examples/timeout                          # sh with background sleeps, 2s
//	go run ./examples/timeout -timeout 5s -- sleep 3   # ends in time: exit 0
//	go run ./examples/timeout -timeout 1s -grace 200ms -- sh -c 'trap "" TERM; sleep 60'
//	go run ./examples/timeout -timeout 10s -- head -1     # under a terminal: reads a typed line
//
// With no command it runs a shell that starts two background sleeps and
// waits for them.
//
// Exit codes:
//
//	the command's own  it ended before the time limit: its exit code, or death
//	                   by the same signal (multiexit.ExitAs)
//	124                the time limit expired; the command's tree was stopped
//	125                the command could not be started
//	SIGINT, SIGTERM    timeout itself got Ctrl-C or SIGTERM: the tree was stopped,
//	                   and timeout dies by that signal (a shell shows 130, 143)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/multiexit/multiexit"
)

func main() {
	limit := flag.Duration("timeout", 2*time.Second, "time limit")
	grace := flag.Duration("grace", time.Second, "time between SIGTERM and SIGKILL")
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 {
		args = []string{"sh", "-c", "sleep 1000 & sleep 1000 & echo sh: started two sleeps; wait"}
	}
	multiexit.Run(func(ctx context.Context) error {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		// Under a terminal the command gets its foreground, as in a
		// shell: it can read what is typed (head -1 works), and Ctrl-C
		// goes to it; timeout then ends the way it did.
		multiexit.Foreground(cmd)
		// Start puts the command in a process group of its own and pushes
		// its stop onto the exit stack: a signal to timeout stops it too.
		kids, err := multiexit.Start(cmd)
		if err != nil {
			fmt.Fprintln(os.Stderr, "timeout:", err)
			multiexit.Exit(125)
		}
		child := kids[0]
		fmt.Printf("timeout: started %s (pid %d), limit %v\n", args[0], child.PID(), *limit)
		done := make(chan error, 1)
		go func() { done <- child.Wait() }()
		t := time.NewTimer(*limit)
		defer t.Stop()
		select {
		case <-done:
			multiexit.ExitAs(cmd.ProcessState) // its status: exit code, or death by the same signal
		case <-t.C:
			fmt.Printf("timeout: %v expired; stopping pid %d and its process group\n", *limit, child.PID())
			fmt.Printf("timeout: stopped: %v\n", child.Stop())
			multiexit.Exit(124)
		case <-ctx.Done():
			// A signal: the exit hooks stop the command; Run exits with 128+signal.
		}
		return nil
	}, multiexit.WithGrace(*grace))
}

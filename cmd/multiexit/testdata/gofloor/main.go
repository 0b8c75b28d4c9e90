// Command gofloor is the least Go program that wraps a command: it starts
// it with os/exec, passes on the common termination signals with
// signal.Notify, and exits with its exit code. BenchmarkWrappingCost
// builds it static (CGO_ENABLED=0) as the floor that multiexit, a Go
// program too, is compared with. It contains nothing, reaps nothing but
// its child, and passes on only these six signals.
package main

import (
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		os.Exit(127)
	}
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	cmd.Wait()
	os.Exit(cmd.ProcessState.ExitCode())
}

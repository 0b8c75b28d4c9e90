//go:build linux

package main

// The processes a trial runs: mxbench re-executes itself as the parent of
// either pool and as its children. The role travels in the environment.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"

	"github.com/multiexit/multiexit"
)

const (
	roleVar  = "MXBENCH_ROLE"  // floor-parent, floor-child or multiexit-parent
	countVar = "MXBENCH_N"     // children per parent
	logVar   = "MXBENCH_LOG"   // the log file the children append to when they stop
	trialVar = "MXBENCH_TRIAL" // tags every process of one trial
)

// role runs this process's role and reports false if it has none (it is
// the driver).
func role() bool {
	if multiexit.IsChild() {
		multiexitWorker()
	}
	switch os.Getenv(roleVar) {
	case "":
		return false
	case "floor-parent":
		floorParent()
	case "floor-child":
		floorChild()
	case "multiexit-parent":
		multiexitParent()
	default:
		fail(fmt.Errorf("unknown role %q", os.Getenv(roleVar)))
	}
	return true
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "mxbench %s (pid %d): %v\n", os.Getenv(roleVar), os.Getpid(), err)
	os.Exit(1)
}

func children() int {
	n, err := strconv.Atoi(os.Getenv(countVar))
	if err != nil || n < 1 {
		fail(fmt.Errorf("%s=%q", countVar, os.Getenv(countVar)))
	}
	return n
}

// ready is the line every child writes to its standard output, the pipe
// the driver reads, in one write.
func ready() {
	if _, err := os.Stdout.WriteString("ready " + strconv.Itoa(os.Getpid()) + "\n"); err != nil {
		fail(err)
	}
}

// appendLog is what every child does when it stops: two lines appended to
// the log file.
func appendLog() error {
	f, err := os.OpenFile(os.Getenv(logVar), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	pid := strconv.Itoa(os.Getpid())
	if _, err := f.WriteString("stopping " + pid + "\n"); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString("stopped " + pid + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// reportMemory is how both parents answer the driver's SIGUSR1: after a
// collection that returns freed memory to the system, a line with the Go
// heap in use and the goroutine stacks, in bytes. It is measurement, not
// part of either pool's job.
func reportMemory() {
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			debug.FreeOSMemory()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			os.Stdout.WriteString(fmt.Sprintf("mem %d %d\n", m.HeapAlloc, m.StackInuse))
		}
	}()
}

// The floor: the least hand-written Go that does a pool's job.

func floorParent() {
	n := children()
	reportMemory()
	exe, err := os.Executable()
	if err != nil {
		fail(err)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	cmds := make([]*exec.Cmd, n)
	for i := range cmds {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), roleVar+"=floor-child")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			fail(err)
		}
		cmds[i] = cmd
	}
	<-term
	for _, cmd := range cmds {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	}
	for _, cmd := range cmds {
		cmd.Wait()
	}
	os.Exit(128 + int(syscall.SIGTERM))
}

func floorChild() {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	ready()
	<-term
	if err := appendLog(); err != nil {
		fail(err)
	}
	os.Exit(128 + int(syscall.SIGTERM))
}

// The same pool with multiexit.

func multiexitParent() {
	n := children()
	reportMemory()
	if err := multiexit.Install(); err != nil {
		fail(err)
	}
	cmds := make([]*exec.Cmd, n)
	for i := range cmds {
		cmds[i] = multiexit.Command()
	}
	if _, err := multiexit.Start(cmds...); err != nil {
		fmt.Fprintf(os.Stderr, "mxbench multiexit-parent: %v\n", err)
		multiexit.Exit(1)
	}
	select {}
}

func multiexitWorker() {
	multiexit.Register(func(context.Context) error { return appendLog() })
	if err := multiexit.Install(); err != nil {
		fail(err)
	}
	ready()
	select {}
}

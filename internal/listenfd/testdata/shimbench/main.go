// Command shimbench measures the exec shim's cost in a small program, as a
// multiexit program would pay it: it starts /bin/true n times, handing it a
// socket, directly or through the shim (this binary re-executed), and
// prints the mean nanoseconds per start and wait, and the mean CPU time
// of the child (user and system: less sensitive to a loaded machine). Mode "go" starts this
// binary instead, which exits at once: what any Go program's start costs,
// for comparison. BenchmarkShim runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/multiexit/multiexit/internal/listenfd"
)

// The root package's init does this in a multiexit program.
func init() {
	listenfd.Shim()
	if os.Getenv("SHIMBENCH_EXIT") != "" {
		os.Exit(0)
	}
}

func main() {
	n := flag.Int("n", 100, "how many starts")
	mode := flag.String("mode", "shim", "direct, shim or go")
	flag.Parse()
	s, err := listenfd.Open("web", "tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	recv := listenfd.AnyProgram
	if *mode == "direct" {
		recv = listenfd.GoWorker
	}
	var cpu time.Duration
	start := time.Now()
	for range *n {
		cmd := exec.Command("/bin/true")
		if *mode == "go" {
			cmd = exec.Command("/proc/self/exe")
			cmd.Env = append(os.Environ(), "SHIMBENCH_EXIT=1")
		}
		h, err := listenfd.Pass(cmd, []*listenfd.Socket{s}, recv)
		if err == nil {
			err = h.Started(cmd.Start())
		}
		if err == nil {
			err = cmd.Wait()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	fmt.Println(time.Since(start).Nanoseconds()/int64(*n), cpu.Nanoseconds()/int64(*n))
}

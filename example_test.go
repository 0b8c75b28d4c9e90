package multiexit_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/multiexit/multiexit"
)

func init() { scenario(exampleRegister, exampleRun, exampleUnregister, exampleDefine) }

// Hooks run only when the process exits, so each example runs its program
// as a child process — this test binary, re-executed (see TestMain) — and
// prints what the child printed and how it exited.
func runExample(f func([]string)) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), scenarioEnv(f), "GORACE=atexit_sleep_ms=0")
	out, _ := cmd.Output()
	fmt.Print(string(out))
	fmt.Println("exit code:", cmd.ProcessState.ExitCode())
}

var exampleRemove = multiexit.Define("example-remove", func(ctx context.Context, dir string) error {
	who := "parent"
	if multiexit.IsChild() {
		who = "worker"
	}
	fmt.Printf("%s: remove %s\n", who, strings.TrimSpace(dir))
	return nil
})

// exampleRegister is ExampleRegister's program.
func exampleRegister([]string) {
	multiexit.Register(func(ctx context.Context) error {
		fmt.Println("close the database")
		return nil
	})
	multiexit.Register(func(ctx context.Context) error {
		fmt.Println("flush the log")
		return nil
	})
	multiexit.Exit(0)
}

// Hooks run newest first when the process exits through Exit (or Run, or
// a signal).
func ExampleRegister() {
	runExample(exampleRegister)
	// Output:
	// flush the log
	// close the database
	// exit code: 0
}

// exampleRun is ExampleRun's program.
func exampleRun([]string) {
	multiexit.Register(func(ctx context.Context) error {
		_, hasDeadline := ctx.Deadline()
		fmt.Println("hook: the context carries the shutdown deadline:", hasDeadline)
		return nil
	})
	multiexit.Run(func(ctx context.Context) error {
		fmt.Println("main: working")
		return fmt.Errorf("the queue is gone")
	})
}

// Run's main returning an error exits 1 after the hooks ran; the error is
// logged to standard error.
func ExampleRun() {
	runExample(exampleRun)
	// Output:
	// main: working
	// hook: the context carries the shutdown deadline: true
	// exit code: 1
}

// exampleUnregister is ExampleHandle_Unregister's program.
func exampleUnregister([]string) {
	h := multiexit.Register(func(ctx context.Context) error {
		fmt.Println("never printed")
		return nil
	})
	fmt.Println("unregistered:", h.Unregister())
	fmt.Println("again:", h.Unregister())
	multiexit.Exit(3)
}

func ExampleHandle_Unregister() {
	runExample(exampleUnregister)
	// Output:
	// unregistered: true
	// again: false
	// exit code: 3
}

// exampleDefine is ExampleDefine's program.
func exampleDefine([]string) {
	if multiexit.IsChild() {
		// Before Install: Start returns once the worker has installed,
		// and the parent may stop it at once.
		multiexit.Register(func(ctx context.Context) error {
			fmt.Println("worker: own hook")
			return nil
		})
		if err := multiexit.Install(); err != nil {
			panic(err)
		}
		select {} // until the parent stops it
	}
	if err := multiexit.Install(); err != nil {
		panic(err)
	}
	exampleRemove.Register("/tmp/spool")
	multiexit.Register(func(ctx context.Context) error {
		fmt.Println("parent: the worker has stopped")
		return nil
	})
	if _, err := multiexit.Start(multiexit.Command("worker")); err != nil {
		panic(err)
	}
	multiexit.Exit(0)
}

// A shared hook runs in the parent and in every worker started after it was
// registered; the worker's own hooks run before its inherited ones, and the
// parent's hook registered before Start runs after the worker has stopped.
func ExampleDefine() {
	runExample(exampleDefine)
	// Output:
	// worker: own hook
	// worker: remove /tmp/spool
	// parent: the worker has stopped
	// parent: remove /tmp/spool
	// exit code: 0
}

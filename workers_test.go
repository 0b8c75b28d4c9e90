//go:build linux || windows

package multiexit_test

// The helpers of the scenarios that start workers, on Linux and Windows.

import (
	"context"
	"os"
	"os/exec"

	"github.com/multiexit/multiexit"
)

// sharedS and sharedL print the role of the process they run in.
var (
	sharedS = multiexit.Define("S", func(ctx context.Context, arg string) error {
		say("%s S(%s)", role(), arg)
		return nil
	})
	sharedL = multiexit.Define("L", func(ctx context.Context, arg int) error {
		say("%s L(%d)", role(), arg)
		return nil
	})
)

// role is "main" in the process the test started, else the worker's first
// argument.
func role() string {
	if !multiexit.IsChild() || len(os.Args) < 2 {
		return "main"
	}
	return os.Args[1]
}

// own is a hook that says the role of its process.
func own(context.Context) error {
	say("%s own", role())
	return nil
}

// sayReady prints "ready NAME PID".
func sayReady(name string) { say("ready %s %d", name, os.Getpid()) }

// mustInstall is Install, or a line saying why it failed and Exit(1).
func mustInstall(opts ...multiexit.Option) {
	if err := multiexit.Install(opts...); err != nil {
		say("install error: %v", err)
		multiexit.Exit(1)
	}
}

// mustStart is Start, or a line saying why it failed and Exit(1).
func mustStart(cmds ...*exec.Cmd) []*multiexit.Child {
	kids, err := multiexit.Start(cmds...)
	if err != nil {
		say("start error: %v", err)
		multiexit.Exit(1)
	}
	return kids
}

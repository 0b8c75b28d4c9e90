//go:build unix && (!linux || mips || mipsle || mips64 || mips64le)

package main

import "os/exec"

// passOn: the shim is Linux's (see shim_linux.go). Here COMMAND inherits
// the signals multiexit's caller ignored that multiexit ignores itself,
// and the signal mask of Go's forking thread.
func passOn(cmd *exec.Cmd, _ callerConfig) *exec.Cmd { return cmd }

func runShim() {}

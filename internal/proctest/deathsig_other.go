//go:build !linux

package proctest

import "os/exec"

// start starts cmd (see deathsig_linux.go; elsewhere a process outlives the
// test binary that started it if the test times out).
func start(cmd *exec.Cmd) error { return cmd.Start() }

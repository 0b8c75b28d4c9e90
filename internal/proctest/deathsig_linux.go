package proctest

import (
	"os/exec"
	"syscall"

	"github.com/multiexit/multiexit/internal/osproc"
)

// start starts cmd so that it is killed if the test binary dies: a test
// that times out panics, and its cleanups, which would stop what it
// started, never run. SIGKILL, since the process may ignore or handle
// SIGTERM as its test wanted; a multiexit parent's containment then ends
// its tree. From osproc's thread that never exits: Pdeathsig fires when
// the forking thread ends, not only the process.
func start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if cmd.SysProcAttr.Pdeathsig == 0 {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	return osproc.StartCmd(cmd)
}

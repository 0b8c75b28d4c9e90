package multiexit

// Starting processes on Linux: from one locked OS thread (Pdeathsig), and
// from the running binary even if its file was replaced.

import (
	"os"
	"os/exec"
	"runtime"
	"sync"
)

// The kernel sends Pdeathsig when the thread that forked the child exits,
// not the process (https://go.dev/issue/27505), so children are forked
// from one locked OS thread that never exits.
var forkThread struct {
	once sync.Once
	jobs chan func()
}

func startCmd(cmd *exec.Cmd) error {
	forkThread.once.Do(func() {
		forkThread.jobs = make(chan func())
		go forkLoop(forkThread.jobs)
	})
	done := make(chan error, 1)
	forkThread.jobs <- func() { done <- cmd.Start() }
	return <-done
}

func forkLoop(jobs <-chan func()) {
	runtime.LockOSThread() // never unlocked: the thread lives as long as the process
	for f := range jobs {
		f()
	}
}

// selfExecutable is the file this process runs, as the kernel holds it:
// still there if the binary was replaced or deleted since it started.
func selfExecutable() (string, error) {
	const self = "/proc/self/exe"
	if _, err := os.Lstat(self); err != nil {
		return os.Executable()
	}
	return self, nil
}

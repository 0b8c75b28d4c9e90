//go:build !linux

package contain

import (
	"log/slog"
	"os/exec"
	"runtime"
	"time"
)

// Init chooses the layer: on Windows the job object (see Job), elsewhere
// process groups alone.
func Init(Config) {
	if runtime.GOOS == "windows" {
		setLayer(JobObject)
	}
}

// Resolved is the layer in use (Current: Init leaves nothing open here).
func Resolved() Layer { return Current() }

// GuardianMain returns at once: there is no guardian without Linux's
// cgroups.
func GuardianMain() {}

// Prepare does nothing: there is no tree cgroup without Linux's.
func Prepare() {}

// Without Linux's subreaper and cgroups, a Start entry needs nothing of its
// own: containment is by process group (ProcessGroup), or on Windows
// by the job object (JobObject), and no orphan needs reaping.
type Entry struct{}

func NewEntry(*slog.Logger) (*Entry, error) { return &Entry{}, nil }

func (*Entry) Prepare(*exec.Cmd) (func(), error) { return func() {}, nil }

func (*Entry) Sweep(time.Time, func(string, ...any)) {}

func (*Entry) Quiet() func() { return func() {} }

func (*Entry) WhenEmpty(f func()) { f() }

func (*Entry) Release() {}

func (*Entry) KeepGroup(int) {}

func (*Entry) ForkTracked(cmd *exec.Cmd, worker bool, start func(*exec.Cmd) error) error {
	return start(cmd)
}

func Untrack(*exec.Cmd) {}

func (*Entry) TermEscapees(groups, externals, workers []int, log func(string, ...any)) {}

func Close() {}

//go:build !linux && !windows

package multiexit

import (
	"os/exec"
	"time"
)

// Without Linux's subreaper and cgroups, containment is by process group
// (see LayerProcessGroup).
type entryContainment struct{}

func initContainment(config) Layer { return LayerProcessGroup }

func newEntryContainment() (*entryContainment, error) { return &entryContainment{}, nil }

func (*entryContainment) prepare(*exec.Cmd) (func(), error) { return func() {}, nil }

func (*entryContainment) sweep(time.Duration, func(string, ...any)) {}

func forkTracked(cmd *exec.Cmd) error { return startCmd(cmd) }

func untrack(int) {}

func closeContainment() {}

func (*entryContainment) empty() bool { return true }

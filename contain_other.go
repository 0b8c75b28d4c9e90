//go:build !linux

package multiexit

import (
	"log/slog"
	"os/exec"
	"time"
)

// Without Linux's subreaper and cgroups, a Start entry needs nothing of its
// own: containment is by process group (LayerProcessGroup), or on Windows
// by the job object (LayerJobObject), and no orphan needs reaping.
type entryContainment struct{}

func newEntryContainment(*slog.Logger) (*entryContainment, error) { return &entryContainment{}, nil }

func (*entryContainment) prepare(*exec.Cmd) (func(), error) { return func() {}, nil }

func (*entryContainment) sweep(time.Time, func(string, ...any)) {}

func (*entryContainment) quiet() func() { return func() {} }

func (*entryContainment) whenEmpty(f func()) { f() }

func (*entryContainment) release() {}

func (*entryContainment) keepGroup(int) {}

func (*entryContainment) forkTracked(cmd *exec.Cmd, worker bool) error { return startCmd(cmd) }

func untrack(*exec.Cmd) {}

func (*entryContainment) termEscapees(groups, externals, workers []int, log func(string, ...any)) {}

func closeContainment() {}

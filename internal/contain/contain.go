// Package contain keeps the descendants of the children a process starts
// from outliving their Start entry: it chooses the containment layer
// (a cgroup v2 per entry with a guardian process, else a child subreaper,
// else process groups; a job object on Windows), tags and tracks each
// entry's children, stops what they left outside their process groups
// with them, and reaps every orphan that reparents to the process.
//
// It is the mechanics below package multiexit, which holds the public
// names (Layer, Containment, ContainmentVar) and calls down: Init at
// Install, NewEntry and the Entry's methods at each Start and its stop,
// Close at exit, and GuardianMain from its package initialisation. It
// reaches nothing of the caller's: the logger, the deadlines and the
// functions it needs (how to start a command, the guardian's binary and
// environment) are passed in. It has no init of its own.
package contain

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// Layer is how the descendants of the children are contained; the values
// are package multiexit's Layer constants.
type Layer int

const (
	// ProcessGroup: process groups alone.
	ProcessGroup Layer = iota
	// Subreaper (Linux): orphans reparent to this process, which stops
	// them with their entry and reaps them.
	Subreaper
	// Cgroup (Linux): a cgroup v2 per entry, killed at its stop, and a
	// guardian outside the tree.
	Cgroup
	// JobObject (Windows): a job object that kills the tree when this
	// process dies.
	JobObject
)

// String is the layer's name, as Var takes it.
func (l Layer) String() string {
	switch l {
	case ProcessGroup:
		return "process-group"
	case Subreaper:
		return "subreaper"
	case Cgroup:
		return "cgroup"
	case JobObject:
		return "job-object"
	}
	return "unknown"
}

// Var caps the layer Init may choose (package multiexit's ContainmentVar).
const Var = "MULTIEXIT_CONTAINMENT"

// Current is the layer Init chose, or fell back to since (a Start that
// could not use it). Read without the containment's lock, which is held
// across forks and stops.
func Current() Layer { return Layer(layer.Load()) }

var layer atomic.Int32

func setLayer(l Layer) { layer.Store(int32(l)) }

// Config is what Init needs of the process that installs the containment.
type Config struct {
	// Timeout is the shutdown deadline: how long the guardian gives the
	// workers of this process, SIGKILLed, to finish their hooks.
	Timeout time.Duration
	// Grace is the grace period of a stop: what the guardian gives the
	// rest of the tree between SIGTERM and SIGKILL.
	Grace time.Duration
	// Log is where the choice of layer, fallbacks and failures go.
	Log *slog.Logger
	// Trace logs the layer chosen.
	Trace bool
	// Executable is the binary the guardian runs (this process's own,
	// which recognises it with GuardianMain); nil: os.Executable.
	Executable func() (string, error)
	// GuardianEnv is the guardian's environment, read when it starts;
	// nil: os.Environ.
	GuardianEnv func() []string
}

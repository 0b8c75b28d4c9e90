package multiexit

// The public face of the containment: the layer's names, and the entry
// into the guardian. The mechanics are in internal/contain.

import "github.com/multiexit/multiexit/internal/contain"

// Layer is how this process contains the descendants of the children it
// starts: what catches one that leaves its process group (setsid, double
// fork).
type Layer int

const (
	// LayerProcessGroup: process groups alone. A descendant that leaves its
	// group is not caught. macOS, the BSDs, and Linux before Install or
	// where the layers below are refused.
	LayerProcessGroup Layer = iota
	// LayerSubreaper (Linux): orphaned descendants reparent to this
	// process, which stops and reaps them by PID when their Start entry
	// stops (the orphans of a SIGKILLed worker's own tree: with the entry
	// that started the worker). Not caught: a descendant that scrubs its environment (the tag
	// that says which entry it belongs to), and, if this process is
	// SIGKILLed, descendants that left their group.
	LayerSubreaper
	// LayerCgroup (Linux with a writable cgroup v2 hierarchy): each Start
	// entry has a cgroup its children are started into; stopping the entry
	// ends with cgroup.kill, which no descendant escapes by setsid or
	// fork. A guardian process outside the tree kills it if this process
	// dies without stopping it. Not caught: a descendant with the
	// privilege to move itself out of the cgroup.
	LayerCgroup
	// LayerJobObject (Windows): children are assigned to a Job object that
	// kills them all when this process dies.
	LayerJobObject
)

func (l Layer) String() string { return contain.Layer(l).String() }

// ContainmentVar, set to "subreaper" or "process-group", caps the layer
// Install may choose (to compare layers, or where a cgroup must not be
// made). Unset (or "cgroup"), Install takes the best layer the system
// allows; any other value is logged as a warning and ignored.
const ContainmentVar = "MULTIEXIT_CONTAINMENT"

// Containment reports the layer that Install chose for this process (and
// that a later Start may have fallen back from: the log says why).
func Containment() Layer { return Layer(contain.Resolved()) }

// init makes this process the guardian its parent started, if it is one:
// then it guards the tree and exits, before the program's main and before
// this package's other init functions (this file's is the first: a
// package's files are initialised in the order of their names).
func init() { contain.GuardianMain() }

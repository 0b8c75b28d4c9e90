package multiexit

import (
	"testing"

	"github.com/multiexit/multiexit/internal/contain"
)

// TestLayersMatchContain: the public names are written out in the root
// (go doc shows them as they are), and the mechanics below use their own:
// both must say the same thing.
func TestLayersMatchContain(t *testing.T) {
	if ContainmentVar != contain.Var {
		t.Errorf("ContainmentVar = %q, internal/contain reads %q", ContainmentVar, contain.Var)
	}
	for _, c := range []struct {
		pub  Layer
		name string
		in   contain.Layer
	}{
		{LayerProcessGroup, "process-group", contain.ProcessGroup},
		{LayerSubreaper, "subreaper", contain.Subreaper},
		{LayerCgroup, "cgroup", contain.Cgroup},
		{LayerJobObject, "job-object", contain.JobObject},
		{Layer(99), "unknown", contain.Layer(99)},
	} {
		if int(c.pub) != int(c.in) || c.pub.String() != c.name || c.in.String() != c.name {
			t.Errorf("%d %q is %d %q in internal/contain (want %q)", c.pub, c.pub, c.in, c.in, c.name)
		}
	}
}

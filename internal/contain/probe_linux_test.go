package contain

import (
	"io"
	"log/slog"
	"testing"

	"golang.org/x/sys/unix"
)

// Init leaves the cgroup layer's probe to the first need: a worker that
// starts no children reads none of the files it takes. The first need
// (Resolved here; NewEntry and Prepare too) decides the layer.
func TestInitLeavesTheProbeToTheFirstNeed(t *testing.T) {
	if _, err := treeCgroupPath(); err != nil {
		t.Skipf("no writable cgroup v2 here: %v", err)
	}
	t.Setenv(Var, "")
	tree.mu.Lock()
	tree.root = "" // an earlier run's (-count)
	tree.mu.Unlock()
	Init(Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	tree.mu.Lock()
	pending, root := probing.Load(), tree.root
	tree.mu.Unlock()
	if !pending || root != "" {
		t.Fatalf("after Init: probe pending %v, root %q; want the probe left for later", pending, root)
	}
	if got := Current(); got != Subreaper {
		t.Errorf("before the probe the layer is %v, want %v (what is known so far)", got, Subreaper)
	}
	if got := Resolved(); got != Cgroup {
		t.Errorf("Resolved() = %v, want %v", got, Cgroup)
	}
	tree.mu.Lock()
	pending, root = probing.Load(), tree.root
	tree.mu.Unlock()
	if pending || root == "" {
		t.Errorf("after Resolved: probe pending %v, root %q; want it made once", pending, root)
	}
}

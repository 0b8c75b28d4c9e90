package listenfd_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestNoNetDependency: the multiexit core imports this package, and keeps
// package net (and with it, in a cgo-enabled build, the cgo runtime) out
// of every program (see the root's TestNoNetDependency).
func TestNoNetDependency(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the dependencies with:", err)
	}
	for _, goos := range []string{"linux", "darwin", "freebsd"} {
		cmd := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}", ".")
		cmd.Env = append(cmd.Environ(), "GOOS="+goos, "CGO_ENABLED=1")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list (GOOS=%s): %v", goos, err)
		}
		deps := strings.Fields(string(out))
		for _, bad := range []string{"net", "runtime/cgo"} {
			if slices.Contains(deps, bad) {
				t.Errorf("GOOS=%s: internal/listenfd depends on %s", goos, bad)
			}
		}
	}
}

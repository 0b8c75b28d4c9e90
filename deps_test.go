package multiexit_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestNoNetDependency keeps package net (and so, in a cgo-enabled build, a
// dynamically linked binary with the cgo runtime) out of every program that
// imports multiexit: it made each process start, every worker's included,
// about a millisecond and a half slower (docs/performance.md). Windows is
// not checked: golang.org/x/sys/windows itself imports net, and a Windows
// build has no cgo resolver to link.
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
				t.Errorf("GOOS=%s: multiexit depends on %s", goos, bad)
			}
		}
	}
}

package proctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
)

// Build is for a TestMain that tests programs: it builds the packages
// pkgs (relative to the test's directory) into a new temporary directory
// and returns it, with a function that removes it. The programs are built
// with -race if the test binary was, once per test process (once for
// -count=3). If the build fails, Build says why and exits 1.
func Build(pkgs ...string) (dir string, remove func()) {
	d, err := os.MkdirTemp("", "multiexit-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	args := []string{"build", "-o", d + string(filepath.Separator)}
	if race() {
		args = append(args, "-race")
	}
	// go test puts $GOROOT/bin first in PATH: this is the go that runs us.
	build := exec.Command("go", append(args, pkgs...)...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "%v: %v\n%s", build.Args, err, out)
		os.RemoveAll(d)
		os.Exit(1)
	}
	return d, func() { os.RemoveAll(d) }
}

// race reports whether this binary was built with -race.
func race() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

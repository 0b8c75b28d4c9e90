// Package cgroupfs holds what the benchmark tool and the tests do to cgroup
// v2 directories they made themselves.
package cgroupfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// RemoveTree removes dir and the cgroups below it, deepest first: a cgroup
// directory is removed with rmdir, only once it has no children and no
// processes. It reports every directory it could not remove.
func RemoveTree(dir string) error {
	var dirs []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	var errs []error
	for _, d := range slices.Backward(dirs) {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

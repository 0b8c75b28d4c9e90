//go:build unix

package main

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// startFailure is the status and the reason for a COMMAND named name that
// could not be started (err is Start's error), as execvp(3) and GNU timeout
// report them: 127 not found, 126 found but not executable, 125 anything
// else (multiexit's own failure).
func startFailure(name string, err error) (int, error) {
	if name == "" {
		return statusNotFound, syscall.ENOENT // execvp("") fails with ENOENT
	}
	if errors.Is(err, exec.ErrNotFound) {
		// execvp tries every directory of PATH: a file there that cannot
		// be executed (a directory, a file without x) makes it fail with
		// EACCES rather than ENOENT. "." is such a name.
		if inPath(name) {
			return statusNotExec, syscall.EACCES
		}
		return statusNotFound, exec.ErrNotFound
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || !strings.HasSuffix(pe.Op, "exec") {
		var ee *exec.Error
		if errors.As(err, &ee) {
			return statusFailed, ee.Err
		}
		return statusFailed, err // not the exec: multiexit's own failure
	}
	switch {
	case errors.Is(pe.Err, syscall.ENOENT), errors.Is(pe.Err, syscall.ENOTDIR):
		return statusNotFound, pe.Err
	case errors.Is(pe.Err, syscall.EACCES), errors.Is(pe.Err, syscall.ENOEXEC), errors.Is(pe.Err, syscall.EISDIR),
		errors.Is(pe.Err, syscall.EPERM), errors.Is(pe.Err, syscall.ETXTBSY):
		return statusNotExec, pe.Err
	}
	return statusFailed, pe.Err
}

// inPath reports whether a directory of PATH holds an entry called name.
func inPath(name string) bool {
	if strings.Contains(name, "/") {
		return false
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir == "" {
			dir = "."
		}
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

// quoteName is name as multiexit's messages show it; an empty name is
// shown as a pair of apostrophes, as GNU timeout and env show it.
func quoteName(name string) string {
	if name == "" {
		return "''"
	}
	return name
}

//go:build unix && !linux

package main

import (
	"io"
	"os"
)

// quietStderr: no per-thread signal mask here (see stderr_linux.go).
func quietStderr(f *os.File) io.Writer { return f }

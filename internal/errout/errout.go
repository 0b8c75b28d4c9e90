// Package errout gives a process a standard error that a broken pipe does
// not kill it through. Go ends a process whose write to descriptor 1 or 2
// finds a broken pipe (SIGPIPE) unless it catches SIGPIPE, but returns
// EPIPE for any other descriptor: a line of multiexit's whose reader is
// gone (a closed terminal, prog 2>&1 | head -1) must not kill the process
// before its hooks ran, a guardian before it killed the tree, nor the
// command-line tool before it stopped COMMAND's.
package errout

import (
	"os"
	"sync"
)

// Writer is standard error through a duplicate of descriptor 2 made at the
// first write (Dup), so that a broken pipe returns EPIPE instead of
// killing the process. Its zero value is ready to use; it may be written
// from several goroutines as an *os.File may.
type Writer struct {
	once sync.Once
	f    *os.File
}

func (w *Writer) Write(p []byte) (int, error) {
	w.once.Do(func() { w.f = Dup() })
	return w.f.Write(p)
}

package multiexit

import (
	"os"
	"sync"
)

// stderrLog is standard error for multiexit's own lines, written through a
// duplicate of descriptor 2 made at the first line. Go ends a process whose
// write to descriptor 1 or 2 finds a broken pipe (SIGPIPE) unless it
// catches SIGPIPE, but returns EPIPE for any other descriptor: a log line
// whose reader is gone (a closed terminal, prog 2>&1 | head -1) must not
// kill the process before its hooks ran, nor a guardian before it killed
// the tree.
type stderrLog struct {
	once sync.Once
	f    *os.File
}

func (l *stderrLog) Write(p []byte) (int, error) {
	l.once.Do(func() { l.f = dupStderr() })
	return l.f.Write(p)
}

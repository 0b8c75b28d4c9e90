package multiexit

import (
	"os"
	"sync"

	"github.com/multiexit/multiexit/internal/errout"
)

// stderrLog is standard error for multiexit's own lines, written through a
// duplicate of descriptor 2 made at the first line, so that a broken pipe
// returns EPIPE instead of killing the process (see internal/errout).
type stderrLog struct {
	once sync.Once
	f    *os.File
}

func (l *stderrLog) Write(p []byte) (int, error) {
	l.once.Do(func() { l.f = errout.Dup() })
	return l.f.Write(p)
}

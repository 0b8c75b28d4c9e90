package errout

import "os"

// Dup returns os.Stderr: Windows has no SIGPIPE, and a write to a broken
// pipe fails.
func Dup() *os.File { return os.Stderr }

//go:build unix && !linux

package multiexit

// The control channel on the BSDs and macOS.

import "os"

// deathPipe makes the pipe whose closing tells a worker that its parent
// died.
func deathPipe() (r, w *os.File, err error) { return os.Pipe() }

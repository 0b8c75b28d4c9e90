package multiexit

import "os"

// dupStderr: Windows has no SIGPIPE; a write to a broken pipe fails.
func dupStderr() *os.File { return os.Stderr }

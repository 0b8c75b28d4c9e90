package multiexit

import "os"

// uncatchable reports whether s is a signal no process can catch: on
// Windows, os.Kill (TerminateProcess).
func uncatchable(s os.Signal) bool { return s == os.Kill }

package multiexit

import "os"

// endProcess ends the process after its hooks. Windows has no death by a
// signal: a shutdown begun by one exits with 128+signal (130 for Ctrl-C).
func endProcess(code int, _ os.Signal) { os.Exit(code) }

// endOf is the exit code of the process that ps describes.
func endOf(ps *os.ProcessState) (code int, sig os.Signal) {
	if ps == nil {
		return 1, nil
	}
	return ps.ExitCode(), nil
}

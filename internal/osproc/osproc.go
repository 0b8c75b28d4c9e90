// Package osproc holds the process mechanics below package multiexit: how a
// child is started (from one locked OS thread on Linux, from the running
// binary), its process group and Pdeathsig, signalling a child or its
// group and waiting for its exit without reaping it, a child run as a job
// of this process's terminal (the foreground, job control), and how this
// process ends by a signal after its hooks.
//
// It knows nothing of the shutdown: what it reports goes back as results,
// and what it needs of a child comes in as a Target. It has no init.
//
// Platforms: Linux has everything; macOS and the BSDs have process groups
// and the terminal's foreground without job control mirroring, no
// Pdeathsig, and no wait without reaping; Windows has process groups for
// CTRL_BREAK_EVENT, TerminateProcess, and no terminal job control.
package osproc

// Target is a started child as its terminal job (Job.Watch) sees it: the
// child's own fields, passed as values and functions so that this package
// needs nothing of the type that holds them.
type Target struct {
	// PID is the child's process ID, and its process group's ID.
	PID int
	// Exited is closed once the child has exited (maybe not yet reaped).
	Exited <-chan struct{}
	// Locked calls f with the child's state held: while f runs, a child
	// that has not exited is not reaped (its PID and its group's ID cannot
	// be reused). stopping says that its stop began.
	Locked func(f func(exited, stopping bool))
}

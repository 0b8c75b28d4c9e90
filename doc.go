// Package multiexit makes a tree of processes shut down in order and leave
// nothing behind. It is a Go port of Python's multiexit, "an atexit
// replacement that supports multiprocessing".
//
// # Hooks
//
// Register pushes a hook onto the process's exit stack. The hooks run
// newest first (LIFO), each at most once, on every exit path multiexit
// controls:
//
//	what happens                                   hooks run          exit code
//	SIGTERM or SIGINT to a parent                  all, LIFO          143, 130 (128+signal)
//	SIGTERM to a worker                            all, LIFO          143
//	SIGINT to a worker (terminal Ctrl-C)           none: ignored      — (the parent orchestrates)
//	Exit(n)                                        all, LIFO          n
//	Run's main returns nil / an error / panics     all, LIFO          0 / 1 / 2
//	Run's main returns after a signal              all, LIFO          128+signal
//	a worker's parent dies (even by SIGKILL)       all, LIFO, worker  143
//	a second signal while hooks run                the rest, briefly  128+first signal
//	a hook fails, panics or overruns the deadline  the rest still run unchanged
//	SIGKILL of the process itself                  none can           137
//
// A Go program that returns from main, or calls os.Exit, runs no hooks: use
// Run or Exit. A panic outside Run's main crashes the process as usual.
//
// # Deadline and escalation
//
// The shutdown has a deadline (WithTimeout, default DefaultTimeout = 20 s,
// under the 30 s that Kubernetes and docker wait before SIGKILL). Every
// hook's context carries it: when it passes, the context's Err is
// context.DeadlineExceeded, after an escalation context.Canceled, and
// context.Cause says which, for it and for contexts derived from it. Until
// the deadline, hooks run one after another on one goroutine of
// multiexit's own (never the goroutine that called Exit). A hook still running at the deadline is abandoned (its goroutine is left
// behind, and the log names it); each remaining hook then runs with a
// context of its own that ends after one second, and is abandoned in turn if
// it overruns that. So the process always exits.
//
// The escalation rule: in a parent, any caught signal that arrives while the
// shutdown runs brings the deadline forward to now (the running hook is
// abandoned, the rest get their one-second windows, children get that window
// as their grace). The exit code stays 128+the first signal. No hook runs
// twice. In a worker, a repeated SIGTERM is not an escalation: the parent's
// stop and the kernel's parent-death signal may both deliver one.
//
// Failures are logged with the hook's name (its Define name, or its
// function's name and source position) and do not change the exit code.
// Nothing is printed on success unless WithLogger asks for progress.
//
// # Signals
//
// Install catches only the configured signals (WithSignals; SIGTERM and
// SIGINT by default), never all of them. A process started with SIGINT
// ignored (nohup, `sh -c 'prog &'`) keeps it ignored unless WithSignals
// names os.Interrupt.
//
// # Workers and shared hooks
//
// A worker is this binary re-executed by Command and started by Start. It
// calls Install (or Run) like any program; IsChild reports that it is a
// worker. A shared hook is defined by name at package level with Define and
// activated with (*Shared[T]).Register: it runs in this process and in every
// worker started after that call, with the same argument (carried as JSON in
// the MULTIEXIT environment variable, which Install removes again).
//
//	var cleanup = multiexit.Define("cleanup", func(ctx context.Context, dir string) error {
//		return os.RemoveAll(dir)
//	})
//
//	func main() {
//		multiexit.Run(func(ctx context.Context) error {
//			if !multiexit.IsChild() {
//				cleanup.Register(os.TempDir() + "/spool")
//				if _, err := multiexit.Start(multiexit.Command("work")); err != nil {
//					return err
//				}
//			}
//			<-ctx.Done()
//			return nil
//		})
//	}
//
// A worker's inherited shared hooks sit at the bottom of its stack, in the
// order its parent registered them. In a worker, register your own hooks
// before Install: the parent may stop the worker as soon as Install has
// acknowledged its start.
//
// # Order of a tree's shutdown
//
// Start pushes one entry onto the stack holding the children of that call.
// When the entry's turn comes, those children are stopped concurrently:
// SIGTERM and SIGCONT to each child's process group, up to the grace period
// (WithGrace, default DefaultGrace = 5 s, bounded by the deadline) for it to
// exit, then SIGKILL to the whole group, and reap. A hook registered before
// the Start call therefore runs after those children have stopped, and one
// registered after runs before. A worker runs its own stack when stopped, so
// a cascade main → w1 → w2 stops leaves first:
//
//	$ go run ./examples/cascade
//
// Every child gets its own process group, so a terminal's Ctrl-C reaches
// only the parent, which then stops the tree in order. Workers catch and
// drop SIGINT (and SIGPIPE, so a write to a dead parent's pipe fails with
// EPIPE instead of killing the worker before its hooks): a caught signal,
// unlike an ignored one, does not pass on to the programs a worker runs.
//
// # Parent death
//
// A worker whose parent dies — even by SIGKILL — runs its hooks and exits
// with 143: it sees end-of-file on the control channel (all platforms; on
// Linux the kernel delivers that end as SIGTERM, see Platforms), and on
// Linux it also gets SIGTERM from the kernel (Pdeathsig). Children are
// forked from one locked OS thread that never exits, because the kernel
// sends Pdeathsig when the forking thread exits, not the process
// (https://go.dev/issue/27505).
//
// # oklog/run
//
// ShutdownActor and (*Child).Actor are actors for github.com/oklog/run: a
// daemon groups them with its own (an HTTP server, a consumer) in one
// run.Group inside Run's main; when a signal arrives or a child exits, the
// group interrupts the others, main returns, and the hooks run.
//
// # Containment
//
// Process groups miss descendants that leave them (setsid, double fork).
// On Linux, Install also chooses the best containment layer the system
// allows and Containment reports it: a cgroup v2 per Start entry, stopped
// with cgroup.kill (LayerCgroup); else a child subreaper that stops and
// reaps orphans it can attribute to an entry (LayerSubreaper); else process
// groups alone. On the cgroup layer a guardian process (this binary,
// re-executed outside the tree) kills the tree if this process is
// SIGKILLed, once its workers have run their hooks. The runtime signals only
// what it started or contained, and never reaps a status that exec.Cmd.Wait
// owns (except as PID 1, which reaps every zombie). The README's
// "Containment" section has the details and the limits of each layer.
//
// # systemd, Kubernetes and containers
//
// Under systemd (NOTIFY_SOCKET set) a program calls Ready once it serves and
// runs as a Type=notify unit; when the shutdown begins multiexit sends
// STOPPING=1 and EXTEND_TIMEOUT_USEC (the deadline and a second), so that
// systemd waits for a shutdown still inside it, and STATUS= lines as it goes.
// Workers and other children do not inherit NOTIFY_SOCKET nor the
// socket-activation variables meant for this process. Without NOTIFY_SOCKET
// none of this does anything. Under Kubernetes, WithDrain keeps serving
// after SIGTERM while readiness fails (Stopping). The README's "Running under
// systemd, Kubernetes and containers" has a unit file and pod settings.
//
// # Platforms
//
// Linux: everything above; a worker learns of its parent's death as
// SIGTERM, from the kernel's Pdeathsig and from the end of the control
// channel, which the kernel turns into SIGTERM (O_ASYNC with F_SETSIG), so
// that nothing waits for it; a worker that does not catch SIGTERM reads the
// channel instead. macOS and the BSDs: process groups and the control
// channel (no Pdeathsig; a parent's death is seen as end-of-file),
// and the group is not pinned while it is killed (no waitid WNOWAIT), so a
// group ID reused in the instant between reaping and SIGKILL could be hit.
// Windows: children in new process groups, stopped through the control
// channel (workers) and CTRL_BREAK_EVENT, then TerminateProcess; a Job
// object kills the tree when the parent dies (see the README).
package multiexit

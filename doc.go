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
//	what happens                                   hooks run          how the process ends
//	SIGTERM or SIGINT to a parent                  all, LIFO          dies by it (shell: 143, 130)
//	SIGTERM to a worker (its parent's stop)        all, LIFO          dies by SIGTERM
//	SIGINT to a worker (terminal Ctrl-C)           none: ignored      — (the parent orchestrates;
//	                                                                  see Foreground)
//	Exit(n)                                        all, LIFO          exit n (0-255; else 255, logged)
//	ExitAs(state)                                  all, LIFO          as that process ended
//	Run's main returns nil / an error / panics     all, LIFO          exit 0 / 1 / 2
//	Run's main returns after a signal              all, LIFO          dies by that signal
//	a worker's parent dies (even by SIGKILL)       all, LIFO, worker  dies by SIGTERM
//	a second signal while hooks run                the rest, briefly  dies by the first signal
//	a signal after Exit or main's return           all, LIFO          unchanged: not an escalation
//	a hook fails, panics or overruns the deadline  the rest still run unchanged
//	SIGKILL of the process itself                  none can           killed (137)
//
// "Dies by" a signal: after the hooks the process resets the signal to its
// default action and raises it, so its parent's wait status says so (a
// shell shows 128+signal, systemd counts SIGTERM as a clean stop, bash stops
// a script loop after a Ctrl-C'd child). Where that cannot be, the process
// exits with 128+signal: as PID 1 of a PID namespace (the kernel drops a
// signal that init sends itself), on Windows, and for signals whose default
// action does not end a process.
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
// The escalation rule: only a second signal escalates. In a parent, a
// caught signal that arrives while a shutdown begun by a signal runs brings
// the deadline forward to now (the running hook is abandoned, the rest get
// their one-second windows, children get that window as their grace); the
// process still ends by the first signal. A shutdown that Exit or Run's
// main began has had no signal yet: the first one that comes (a batch job
// that exits as systemd stops it) is noted in the log (Info), not an
// escalation; a second one is.
//
// WithDrain sets a drain delay for a shutdown begun by a signal: Stopping
// is closed at once (readiness fails) while Run's main goes on serving for
// the delay; then its context is cancelled and the ordered stop runs, all
// inside the deadline. Run's main returning, or calling Exit, during the
// drain ends it at once: nothing serves any more. No hook runs twice. In a
// worker, SIGTERM never escalates: it is the parent's stop, the kernel's
// word of its death, or (on Linux) a line the parent wrote on the control
// channel, any of which may give the worker less time (see "One budget for
// the tree").
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
// the MULTIEXIT environment variable, which Install removes again). An
// argument that would not arrive equal (a string that is not valid UTF-8,
// an unexported field that is not zero) is refused: the hook runs here, and
// Start refuses to start workers, naming the hook and the field.
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
// acknowledged its start. A worker catches SIGTERM from its package
// initialisation on, whatever WithSignals says, and a SIGTERM that comes
// before Install is held until then, so its hooks run.
//
// # Order of a tree's shutdown
//
// Start pushes one entry onto the stack holding the children of that call.
// When the entry's turn comes, those children are stopped concurrently:
// SIGTERM and SIGCONT to each child's process group, up to the grace period
// (WithGrace, default DefaultGrace = 5 s) for them to exit, then SIGKILL to
// the whole group, and reap. A hook registered before the Start call
// therefore runs after those children have stopped, and one registered
// after runs before. A worker runs its own stack when stopped, so a cascade
// main → w1 → w2 stops leaves first:
//
//	$ go run ./examples/cascade
//
// # One budget for the tree
//
// A stop fits in the time the level above gives it, whichever end it begins
// at. When an entry's turn comes, its children get the grace period but at
// most half of what is left of the deadline. Just before it sends a worker
// SIGTERM, the parent writes it that grace period on the control channel;
// the worker makes it its own deadline (less a small margin) if that is
// shorter than its WithTimeout, and logs that at Info. Its children then
// get at most half of that, and so on down. A worker listens to its control
// channel for as long as it lives, and a shorter deadline from its parent
// always shortens its own, never the other way round:
//
//   - the top stopped by a signal or Exit: each worker gets its budget with
//     its parent's SIGTERM;
//   - the top dies (SIGKILL, a panic, os.Exit): the worker takes the
//     parent's deadline, written at Start, counted from when it sees the
//     death — the guardian counts from the same moment — in whichever order
//     the kernel's word of it comes (Pdeathsig, which can come first, the
//     control channel's end, its O_ASYNC signal);
//   - a worker already stopping when its parent's stop comes (it called
//     Exit, got SIGTERM from elsewhere, or the whole unit got SIGTERM at
//     once, as under systemd's KillMode=control-group): its deadline
//     shrinks to the budget then, and if it is stopping children of its own
//     meanwhile, their grace shrinks too and they are told the new budget.
//
// So every level's hooks run, leaves first, in each of these orders. In a
// worker, WithTimeout is so an upper bound.
//
// Every child gets its own process group, so a terminal's Ctrl-C reaches
// only the parent, which then stops the tree in order. Workers catch and
// drop SIGINT (a worker that holds the terminal passes it to its parent:
// see Foreground), and SIGPIPE, so a write to a dead parent's pipe fails
// with EPIPE instead of killing the worker before its hooks: a caught
// signal, unlike an ignored one, does not pass on to the programs a worker
// runs.
//
// # Parent death
//
// A worker whose parent dies — even by SIGKILL — runs its hooks and dies by
// SIGTERM: it sees end-of-file on the control channel (all platforms; on
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
// what it started or contained. On the cgroup and subreaper layers the
// process is a child subreaper, and it reaps every zombie child that no one
// will wait for (the orphans of its tree, and those of the commands it
// shells out to), never a status that exec.Cmd.Wait owns: such a child holds
// a pidfd until it is waited for. An entry whose children and descendants
// are all gone is released, with its cgroup. The guardian is this binary,
// taken over in this package's initialisation when, and only when, its
// parent started it for that purpose. docs/containment.md has the details
// and the limits of each layer.
//
// # The terminal
//
// Every child has its own process group, so the terminal's Ctrl-C reaches
// the parent only. A child that must read the terminal is started with
// Start(Foreground(cmd)): it gets the terminal's foreground as a shell's job
// does (and so the terminal's Ctrl-C), and the parent takes it back when the
// child exits. On Linux the child and the parent are one job of the shell
// that started the parent: when the child is stopped (Ctrl-Z, a read of the
// terminal from the background), the parent stops itself by the same
// signal, so the shell says "Stopped" and gives its prompt back; fg and bg
// continue both, and fg gives the child the terminal again. A worker
// started with Foreground passes the terminal's Ctrl-C to its parent, which
// stops the tree in order. See Foreground for the details.
//
// # systemd, Kubernetes and containers
//
// Under systemd (NOTIFY_SOCKET set) a program calls Ready once it serves and
// runs as a Type=notify unit; when the shutdown begins multiexit sends
// STOPPING=1 and EXTEND_TIMEOUT_USEC (the deadline and a second), so that
// systemd waits for a shutdown still inside it, and STATUS= lines as it goes.
// Workers and other children do not inherit NOTIFY_SOCKET, the
// socket-activation variables nor the watchdog's meant for this process,
// and the guardian none of them whatever their values. Without NOTIFY_SOCKET
// none of this does anything. Under Kubernetes, WithDrain keeps serving
// after SIGTERM while readiness fails (Stopping). docs/engines.md has a
// unit file and pod settings.
//
// # Platforms
//
// Linux: everything above; a worker learns of its parent's death as
// SIGTERM, from the kernel's Pdeathsig and from the end of the control
// channel, which the kernel turns into SIGTERM (O_ASYNC with F_SETSIG), so
// that nothing waits for it (a worker always catches SIGTERM); the parent
// also writes on that channel, just before its SIGTERM, the time the
// worker has to stop. macOS and the BSDs: process groups and the control
// channel (no Pdeathsig; a parent's death is seen as end-of-file, and a
// goroutine reads the parent's lines for the worker's whole life, so a
// budget read after the shutdown began still shortens it), and the group
// is not pinned while it is killed (no waitid WNOWAIT), so a group ID
// reused in the instant between reaping and SIGKILL could be hit. Windows:
// children in new process groups, stopped through the control channel
// (workers: their budget, then its end) and CTRL_BREAK_EVENT, then
// TerminateProcess; a worker's budget cannot be shortened once its stop
// has begun (the channel is closed then); a Job object kills the tree when
// the parent dies (see docs/containment.md).
package multiexit

import "github.com/multiexit/multiexit/internal/ctl"

// The environment contract with workers: the variable that carries the
// registry (see Start), and its bound. The walkthrough above tells what it
// carries; internal/ctl encodes it (its own constants are held equal to
// these by TestEnvContract).

// EnvVar is the environment variable that carries the registry from a
// parent to the workers it starts.
const EnvVar = "MULTIEXIT"

const (
	// pending marks a Command that Start has not encoded yet.
	pending = ctl.Pending
	// MaxRegistry bounds the encoded registry (and what a worker accepts),
	// well below Linux's 128 KiB limit on one environment string.
	MaxRegistry = 64 << 10
)

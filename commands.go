package multiexit

import (
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"weak"

	"github.com/multiexit/multiexit/internal/sdnotify"
)

// Commands before Start: the marks Command and Foreground put on them, and
// their environment.

// cmdSet is a set of commands by identity, with weak pointers: Command
// and Foreground mark commands in one, and Start takes the mark.
type cmdSet struct {
	mu sync.Mutex
	m  map[weak.Pointer[exec.Cmd]]struct{}
}

func (w *cmdSet) add(cmd *exec.Cmd) {
	p := weak.Make(cmd)
	w.mu.Lock()
	if w.m == nil {
		w.m = map[weak.Pointer[exec.Cmd]]struct{}{}
	}
	w.m[p] = struct{}{}
	w.mu.Unlock()
	runtime.AddCleanup(cmd, w.forget, p)
}

func (w *cmdSet) forget(p weak.Pointer[exec.Cmd]) {
	w.mu.Lock()
	delete(w.m, p)
	w.mu.Unlock()
}

// has reports whether cmd is in the set.
func (w *cmdSet) has(cmd *exec.Cmd) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.m[weak.Make(cmd)]
	return ok
}

// take reports whether cmd came from Command, and forgets it.
func (w *cmdSet) take(cmd *exec.Cmd) bool {
	p := weak.Make(cmd)
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.m[p]
	delete(w.m, p)
	return ok
}

// environWithout returns env without the variable name, in a new slice.
func environWithout(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// guardianEnv is the environment of the tree's guardian: this process's,
// without anything meant for this process alone: multiexit's own variables
// (MULTIEXIT, the tree's tag, the layer's cap: the guardian reads only its
// own) and the service manager's (NOTIFY_SOCKET, LISTEN_*, WATCHDOG_*),
// whatever their values: the guardian speaks to no one and serves nothing.
func guardianEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return strings.HasPrefix(name, "MULTIEXIT") || sdnotify.IsVar(name)
	})
}

// foregrounds are the commands Foreground marked.
var foregrounds cmdSet

// Foreground marks cmd, before Start, to be run as a shell runs a job in
// this process's terminal, and returns it.
//
// The child's process group gets the terminal's foreground: it can read
// the terminal (without it, a child in its own process group that reads
// the terminal is stopped by SIGTTIN), and the terminal's Ctrl-C (SIGINT)
// and Ctrl-\ (SIGQUIT) go to its group instead of this process's. When it
// exits, this process takes the foreground back. The child still has its
// own process group, and Start's entry stops it as any other child.
//
// On Linux the child and this process also stop and go on together, as
// one job of the shell that started this process:
//   - When the child's group is stopped — Ctrl-Z (SIGTSTP), a read or
//     write of the terminal from the background (SIGTTIN, SIGTTOU), or
//     SIGSTOP — this process takes the foreground back and stops itself
//     by the same signal, with the rest of its own process group (the
//     other commands of a pipeline), so that the shell shows the job
//     "Stopped" and gives its prompt back.
//   - When this process is continued (SIGCONT: the shell's fg or bg), it
//     gives the foreground to the child's group if the shell gave it the
//     foreground (fg), and continues the child's group.
//   - Started from a background job, the child starts in the background
//     too; it gets the foreground once the job is brought to it (fg).
//   - If this process's group is orphaned (no shell is there to continue
//     it), a stop is not mirrored: a child stopped by Ctrl-Z is continued
//     (the kernel discards that stop for an orphaned group), one stopped
//     by SIGTTIN or SIGTTOU gets SIGHUP and SIGCONT, as the kernel does to
//     a stopped group that is orphaned.
//   - Once the child's stop by its entry has begun, a stop of the child
//     is undone (SIGCONT), so that it can exit.
//
// A stop signal sent to this process itself (kill -TSTP) is not caught
// here: it stops this process alone, as it would any process (and a read
// of the terminal that the child had begun may then take what is typed at
// the shell's prompt). A program that wants it to stop the job catches it
// and passes it on with (*Child).SignalGroup; the child's stop then stops
// this process, as above. cmd/multiexit does this.
//
// A worker (Command) started with Foreground passes the terminal's Ctrl-C
// on: a worker never stops on SIGINT itself, but while its group (or the
// group of a Foreground child of its own) holds the terminal's foreground,
// it sends the SIGINT it gets to its parent, which then begins its
// shutdown as for a Ctrl-C of its own (if it catches SIGINT: see
// WithSignals), and so stops the tree in order, the worker included.
//
// The terminal is this process's controlling terminal (the one /dev/tty
// names). Foreground does nothing where there is no terminal, for a
// command that starts a session of its own (SysProcAttr.Setsid) or joins
// another process group (SysProcAttr.Pgid), and on Windows (console
// processes share the console's input). On macOS and the BSDs the child
// gets the foreground and the parent takes it back, but stops are not
// mirrored.
func Foreground(cmd *exec.Cmd) *exec.Cmd {
	foregrounds.add(cmd)
	return cmd
}

package multiexit

// Commands before Start: the marks Command and Foreground put on them, and
// their environment.

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

package multiexit

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"runtime"
	"sync"
)

// Handle is one entry of the process's exit stack: a hook from Register or
// (*Shared[T]).Register. Its String method names the hook as the logs do.
type Handle struct {
	hook func(ctx context.Context) error
	// name is set for shared hooks and children; plain hooks are named
	// lazily from their function, so Register costs one allocation.
	name string
	// shared is what a worker inherits; nil for hooks of this process only.
	shared *sharedArg
	// namer names the hook when it is logged (the children of a Start
	// entry, which change as Start adds them); nil for other hooks.
	namer fmt.Stringer
	// stopsChildren marks a Start entry: when the shutdown's context ends
	// while it runs, its children get the late window before SIGKILL, and
	// the drainer waits for that instead of abandoning it (the hooks below
	// it must not run while its children live).
	stopsChildren bool
}

// sharedArg is what a worker inherits of a shared hook (see Define): its
// name, and its argument as JSON, or the error that encoding it gave.
type sharedArg struct {
	name string
	arg  []byte
	err  error
}

// String names the hook: its Define name, the children it stops, or its
// function's name and source position.
func (h *Handle) String() string {
	if h == nil {
		return "<nil handle>"
	}
	if h.name != "" {
		return h.name
	}
	if h.namer != nil {
		return h.namer.String()
	}
	return funcName(h.hook)
}

func funcName(f any) string {
	v := reflect.ValueOf(f)
	if v.Kind() != reflect.Func || v.IsNil() {
		return "<nil hook>"
	}
	fn := runtime.FuncForPC(v.Pointer())
	if fn == nil {
		return "<unknown hook>"
	}
	file, line := fn.FileLine(fn.Entry())
	return fmt.Sprintf("%s (%s:%d)", fn.Name(), filepath.Base(file), line)
}

// stack is a LIFO stack of exit hooks. exitStack is the process's.
type stack struct {
	mu      sync.Mutex
	entries []*Handle
	drained bool // the stack was run to the end: the process is exiting
	// late is told of a hook pushed after the stack was run to its end; the
	// drainer sets it.
	late *slog.Logger
}

var exitStack stack

// Register pushes hook onto the process's exit stack and returns a handle
// that can take it off again. Hooks run newest first, each at most once, on
// every exit path that multiexit controls (see the package documentation).
//
// Register works before Install. A hook registered while the shutdown is
// running (from inside another hook, say) is the newest entry, so it runs
// next. A hook registered after the stack has been run to its end cannot run;
// that is logged. A nil hook is ignored: the returned handle's Unregister
// reports false.
func Register(hook func(ctx context.Context) error) *Handle {
	h := &Handle{hook: hook}
	if hook == nil {
		return h
	}
	exitStack.push(h)
	return h
}

// Unregister takes the hook off the stack. It reports true if it did, false
// if the hook had already run, was running, or was unregistered before.
// It is safe to call from any goroutine, including from inside a hook.
func (h *Handle) Unregister() bool {
	if h == nil {
		return false
	}
	return exitStack.remove(h)
}

func (s *stack) push(h *Handle) {
	s.mu.Lock()
	drained, late := s.drained, s.late
	if !drained {
		s.entries = append(s.entries, h)
	}
	s.mu.Unlock()
	if drained && late != nil {
		late.Warn("multiexit: hook registered after the exit hooks ran; it will not run", "hook", h.String())
	}
}

// pushBottom puts hs below every entry, keeping their order (hs[0] lowest).
func (s *stack) pushBottom(hs []*Handle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = append(append(make([]*Handle, 0, len(hs)+len(s.entries)), hs...), s.entries...)
}

func (s *stack) remove(h *Handle) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.entries) - 1; i >= 0; i-- {
		if s.entries[i] == h {
			copy(s.entries[i:], s.entries[i+1:])
			s.entries[len(s.entries)-1] = nil
			s.entries = s.entries[:len(s.entries)-1]
			return true
		}
	}
	return false
}

// pop takes the newest entry. When the stack is empty it marks it drained,
// so that nothing registered later is silently kept.
func (s *stack) pop() *Handle {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.popLocked()
}

func (s *stack) popLocked() *Handle {
	n := len(s.entries)
	if n == 0 {
		s.drained = true
		return nil
	}
	h := s.entries[n-1]
	s.entries[n-1] = nil
	s.entries = s.entries[:n-1]
	return h
}

// snapshot returns the entries, oldest first.
func (s *stack) snapshot() []*Handle {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Handle(nil), s.entries...)
}

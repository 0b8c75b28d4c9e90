package multiexit

// Benchmarks of the in-process costs: the exit stack and the registry codec.
// They run only with -bench; see docs/performance.md for the commands.
//
// They use the process's real stack (exitStack), as Register does, and
// leave it as they found it.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/multiexit/multiexit/internal/ctl"
)

func nopHook(context.Context) error { return nil }

// stackBatch is how many hooks one round registers and runs: large enough
// that a round's fixed cost (the runner goroutine, its channel) is
// negligible per hook, small enough to stay in cache.
const stackBatch = 4096

// saveStack empties exitStack for a benchmark and restores it after.
func saveStack(b *testing.B) {
	exitStack.mu.Lock()
	saved, drained := exitStack.entries, exitStack.drained
	exitStack.entries, exitStack.drained = make([]*Handle, 0, stackBatch), false
	exitStack.mu.Unlock()
	b.Cleanup(func() {
		exitStack.mu.Lock()
		exitStack.entries, exitStack.drained = saved, drained
		exitStack.mu.Unlock()
	})
}

// resetStack drops what is left and undoes the drained mark, keeping the
// slice's capacity.
func resetStack() {
	exitStack.mu.Lock()
	clear(exitStack.entries)
	exitStack.entries, exitStack.drained = exitStack.entries[:0], false
	exitStack.mu.Unlock()
}

// runStack runs exitStack to its end as finish does, without exiting.
func runStack() {
	d := &drainer{s: &exitStack, ctx: context.Background(), window: lateWindow,
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	d.run()
}

// inRounds calls round(n) with n = stackBatch hooks (fewer in the last
// round), b.N hooks in all, on an empty exitStack that it restores after.
func inRounds(b *testing.B, round func(n int)) {
	saveStack(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i += stackBatch {
		round(min(stackBatch, b.N-i))
	}
}

// untimed runs f with b's timer stopped.
func untimed(b *testing.B, f func()) {
	b.StopTimer()
	f()
	b.StartTimer()
}

// registerNop pushes n hooks.
func registerNop(n int) {
	for range n {
		Register(nopHook)
	}
}

// BenchmarkRegister is Register alone: one op is one hook pushed.
func BenchmarkRegister(b *testing.B) {
	inRounds(b, func(n int) {
		registerNop(n)
		untimed(b, resetStack)
	})
}

// BenchmarkRunStack is running the stack: one op is one hook popped and
// called on the runner goroutine (the hooks are registered untimed).
func BenchmarkRunStack(b *testing.B) {
	inRounds(b, func(n int) {
		untimed(b, func() { registerNop(n) })
		runStack()
		untimed(b, resetStack)
	})
}

// BenchmarkRegisterAndRun is the life of one hook: Register, then its share
// of running the stack. One op is one hook.
func BenchmarkRegisterAndRun(b *testing.B) {
	inRounds(b, func(n int) {
		registerNop(n)
		runStack()
		resetStack()
	})
}

// BenchmarkUnregister is Register then Unregister of the newest entry on a
// stack of 16 others.
func BenchmarkUnregister(b *testing.B) {
	saveStack(b)
	for range 16 {
		Register(nopHook)
	}
	b.ReportAllocs()
	for b.Loop() {
		Register(nopHook).Unregister()
	}
	resetStack()
}

type benchArg struct {
	Path string `json:"path"`
	Mode int    `json:"mode"`
}

var benchShared = Define("multiexit-bench", func(context.Context, benchArg) error { return nil })

// registryFixture registers n shared hooks and returns the stack's entries
// and the hooks' JSON, taking the hooks off again when b ends.
func registryFixture(b *testing.B, n int) ([]*Handle, string) {
	saveStack(b)
	for i := range n {
		benchShared.Register(benchArg{Path: fmt.Sprintf("/var/run/app/worker-%d.sock", i), Mode: 0o600})
	}
	entries := exitStack.snapshot()
	hooksJSON, err := encodeHooks(entries)
	if err != nil {
		b.Fatal(err)
	}
	return entries, hooksJSON
}

// BenchmarkSharedRegister is a shared hook's Register and Unregister: the
// argument's JSON, and its round trip (it must arrive unchanged).
func BenchmarkSharedRegister(b *testing.B) {
	saveStack(b)
	arg := benchArg{Path: "/var/run/app/worker-1.sock", Mode: 0o600}
	b.ReportAllocs()
	for b.Loop() {
		benchShared.Register(arg).Unregister()
	}
	resetStack()
}

var registrySizes = []int{0, 1, 16}

// BenchmarkRegistryEncode is what Start does per call (the hooks' JSON) and
// per worker (the registry string).
func BenchmarkRegistryEncode(b *testing.B) {
	for _, n := range registrySizes {
		b.Run(fmt.Sprintf("hooks=%d", n), func(b *testing.B) {
			entries, _ := registryFixture(b, n)
			b.ReportAllocs()
			for b.Loop() {
				j, err := encodeHooks(entries)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := ctl.Encode(os.Getpid(), [2]uintptr{3, 4}, j); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRegistryDecode is what a worker's Install parses.
func BenchmarkRegistryDecode(b *testing.B) {
	for _, n := range registrySizes {
		b.Run(fmt.Sprintf("hooks=%d", n), func(b *testing.B) {
			_, j := registryFixture(b, n)
			s, err := ctl.Encode(os.Getpid(), [2]uintptr{3, 4}, j)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(s)))
			b.ReportAllocs()
			for b.Loop() {
				r, err := ctl.Decode(s)
				if err != nil {
					b.Fatal(err)
				}
				if len(r.Hooks) != n {
					b.Fatalf("decoded %d hooks, want %d", len(r.Hooks), n)
				}
			}
		})
	}
}

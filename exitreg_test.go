package multiexit

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func namedHookForTest(context.Context) error { return nil }

func TestHandleNamesItsHook(t *testing.T) {
	h := &Handle{hook: namedHookForTest}
	if s := h.String(); !strings.Contains(s, "multiexit.namedHookForTest") || !strings.Contains(s, "exitreg_test.go:") {
		t.Errorf("String() = %q, want the function name and its file", s)
	}
	if s := (&Handle{name: "S"}).String(); s != "S" {
		t.Errorf("shared hook name: %q", s)
	}
	var nilHandle *Handle
	if nilHandle.Unregister() {
		t.Error("nil handle unregistered")
	}
}

// Register and Unregister from many goroutines at once (run with -race).
func TestConcurrentRegisterUnregister(t *testing.T) {
	before := len(exitStack.snapshot())
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	kept := make([][]*Handle, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				h := Register(namedHookForTest)
				if i%2 == 0 {
					if !h.Unregister() {
						t.Error("Unregister of a fresh hook returned false")
					}
					if h.Unregister() {
						t.Error("second Unregister returned true")
					}
					continue
				}
				kept[g] = append(kept[g], h)
			}
		}()
	}
	wg.Wait()
	if got, want := len(exitStack.snapshot())-before, goroutines*each/2; got != want {
		t.Errorf("stack grew by %d, want %d", got, want)
	}
	for _, hs := range kept {
		for _, h := range hs {
			if !h.Unregister() {
				t.Fatal("Unregister of a kept hook returned false")
			}
		}
	}
	if got := len(exitStack.snapshot()); got != before {
		t.Errorf("stack has %d entries after cleanup, want %d", got, before)
	}
}

// A drained stack keeps nothing: a hook registered after the exit hooks
// ran cannot run, and is not silently kept.
func TestRegisterAfterDrained(t *testing.T) {
	var s stack
	if s.pop() != nil {
		t.Fatal("pop of an empty stack")
	}
	s.push(&Handle{hook: namedHookForTest})
	if n := len(s.snapshot()); n != 0 {
		t.Errorf("drained stack took a hook: %d entries", n)
	}
}

// The drainer runs newest first, survives panics and Goexit, and every
// hook runs once.
func TestDrainerOrder(t *testing.T) {
	var s stack
	var mu sync.Mutex
	var got []string
	rec := func(name string, then func()) *Handle {
		return &Handle{name: name, hook: func(context.Context) error {
			mu.Lock()
			got = append(got, name)
			mu.Unlock()
			if then != nil {
				then()
			}
			return nil
		}}
	}
	s.push(rec("a", nil))
	s.push(rec("panics", func() { panic("boom") }))
	s.push(rec("b", nil))
	s.push(rec("goexit", func() { runtimeGoexit() }))
	s.push(rec("c", func() { s.push(rec("pushed-inside", nil)) }))
	// A hook that ends its goroutine ends run's: the drainer goes on in
	// another and calls exit from there.
	done := make(chan struct{})
	d := &drainer{s: &s, ctx: context.Background(), window: lateWindow, log: discardLogger(), exit: func() { close(done) }}
	go d.run()
	<-done
	want := []string{"c", "pushed-inside", "goexit", "b", "panics", "a"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("ran %v, want %v", got, want)
	}
}

// The hooks' context behaves as context.WithDeadlineCause under
// context.WithCancelCause, for itself and for the contexts derived from it.
func TestShutdownContext(t *testing.T) {
	t.Run("deadline", func(t *testing.T) {
		c := newShutdownCtx(nil)
		before := time.Now()
		c.arm(time.Hour)
		if dl, ok := c.Deadline(); !ok || dl.Before(before.Add(time.Hour)) {
			t.Errorf("Deadline() = %v, %v; want about an hour from now", dl, ok)
		}
		derived, cancel := context.WithTimeout(c, 2*time.Hour) // later than the parent's: WithCancel
		defer cancel()
		if c.Err() != nil || derived.Err() != nil || context.Cause(c) != nil {
			t.Fatalf("before the end: Err %v, derived %v, Cause %v", c.Err(), derived.Err(), context.Cause(c))
		}
		c.timer.Reset(0) // the deadline, now
		<-c.Done()
		<-derived.Done()
		want := deadlinePassed(time.Hour)
		for name, ctx := range map[string]context.Context{"ctx": c, "derived": derived} {
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				t.Errorf("%s: Err() = %v, want DeadlineExceeded", name, ctx.Err())
			}
			if got := context.Cause(ctx); got != want {
				t.Errorf("%s: Cause = %v, want %v", name, got, want)
			}
		}
	})
	t.Run("escalation", func(t *testing.T) {
		c := newShutdownCtx(nil)
		c.arm(time.Hour)
		derived, cancel := context.WithCancel(c)
		defer cancel()
		escalated := errors.New("escalated")
		if !c.end(escalated, false) || c.end(errors.New("again"), true) {
			t.Fatal("end: want true once, then false")
		}
		<-derived.Done()
		for name, ctx := range map[string]context.Context{"ctx": c, "derived": derived} {
			if ctx.Err() != context.Canceled || context.Cause(ctx) != escalated {
				t.Errorf("%s: Err %v, Cause %v; want Canceled, %v", name, ctx.Err(), context.Cause(ctx), escalated)
			}
		}
	})
}

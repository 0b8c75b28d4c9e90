package multiexit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/multiexit/multiexit/internal/ctl"
)

// Shared hooks: Define names a hook at package initialisation, Register
// activates it here and in every worker started afterwards, with its
// argument (JSON). What a worker inherits is the registry (worker.go); here
// is what is checked before it leaves: the definitions, and that the
// argument reaches a worker unchanged.

// Shared is a hook defined by name with Define. Activated with Register, it
// runs in this process and in every worker started after that call.
type Shared[T any] struct {
	name string
	hook func(ctx context.Context, arg T) error
	err  error // the definition was refused (duplicate or empty name)
}

type definition struct {
	where string
	bind  func(raw json.RawMessage) (func(ctx context.Context) error, error)
}

var defs struct {
	mu     sync.Mutex
	byName map[string]definition
	errs   []error
}

// Define defines a shared hook named name. Call it at package
// initialisation (a package-level var), so that a worker, which runs the same
// binary, knows every name its parent can pass. The argument travels as
// JSON, so T must encode and decode with encoding/json, and a value must
// come back equal (see Register).
//
// An empty name, a nil hook or a name defined twice is a programming error:
// Install and Start report it, naming both places.
func Define[T any](name string, hook func(ctx context.Context, arg T) error) *Shared[T] {
	where := "?"
	if _, file, line, ok := runtime.Caller(1); ok {
		where = fmt.Sprintf("%s:%d", filepath.Base(file), line)
	}
	s := &Shared[T]{name: name, hook: hook}
	defs.mu.Lock()
	defer defs.mu.Unlock()
	if defs.byName == nil {
		defs.byName = make(map[string]definition)
	}
	switch prev, dup := defs.byName[name]; {
	case name == "":
		s.err = fmt.Errorf("multiexit: Define at %s: empty name", where)
	case hook == nil:
		s.err = fmt.Errorf("multiexit: Define(%q) at %s: nil hook", name, where)
	case dup:
		s.err = fmt.Errorf("multiexit: Define(%q) at %s: name already defined at %s", name, where, prev.where)
	default:
		defs.byName[name] = definition{where: where, bind: func(raw json.RawMessage) (func(context.Context) error, error) {
			var arg T
			if err := json.Unmarshal(raw, &arg); err != nil {
				return nil, err
			}
			return func(ctx context.Context) error { return hook(ctx, arg) }, nil
		}}
	}
	if s.err != nil {
		defs.errs = append(defs.errs, s.err)
	}
	return s
}

// checkDefines reports every refused Define.
func checkDefines() error {
	defs.mu.Lock()
	defer defs.mu.Unlock()
	return errors.Join(defs.errs...)
}

// Register activates the shared hook with arg: it is pushed onto this
// process's stack like any hook, and every worker started after this call
// inherits it, at the bottom of its stack, with the same argument. Unregister
// takes it off the stack; workers started afterwards do not inherit it.
//
// The argument travels as JSON, and arrives unchanged or not at all:
// Register decodes it as a worker will and compares the two (with an Equal
// method where the type has one, as time.Time does). If arg does not
// encode, or would not arrive equal — a string that is not valid UTF-8
// (JSON would replace its bad bytes with U+FFFD: another path), an
// unexported field that is not zero (JSON leaves it out), a number in an
// interface (it arrives as a float64) — the hook still runs here, with arg,
// and while it is registered Start refuses to start workers, with an error
// that names the hook and the field. Register itself cannot fail: its
// result is the hook's Handle either way.
func (s *Shared[T]) Register(arg T) *Handle {
	raw, err := json.Marshal(arg)
	if err != nil {
		err = fmt.Errorf("multiexit: shared hook %q: argument does not encode as JSON: %w", s.name, err)
	} else if d := roundTrip(arg, raw); d != "" {
		err = fmt.Errorf("multiexit: shared hook %q: its argument would not reach workers unchanged: %s", s.name, d)
	}
	if s.err != nil {
		err = s.err
	}
	h := &Handle{name: s.name, shared: &sharedArg{name: s.name, arg: raw, err: err}}
	if s.hook == nil {
		return h
	}
	hook := s.hook
	h.hook = func(ctx context.Context) error { return hook(ctx, arg) }
	exitStack.push(h)
	return h
}

// encodeHooks encodes the active shared hooks, oldest first.
func encodeHooks(entries []*Handle) (string, error) {
	hooks := []ctl.Hook{}
	for _, h := range entries {
		if h.shared == nil {
			continue
		}
		if h.shared.err != nil {
			return "", h.shared.err
		}
		hooks = append(hooks, ctl.Hook{N: h.shared.name, A: h.shared.arg})
	}
	if len(hooks) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(hooks)
	return string(b), err
}

// Whether a shared hook's argument reaches a worker unchanged: it travels
// as JSON (see Shared.Register), which cannot carry every Go value. A
// string that is not valid UTF-8 arrives with U+FFFD in place of its bad
// bytes (a different, valid path), an unexported field arrives as zero, a
// number held in an interface arrives as a float64. Register decodes the
// encoded argument as a worker will and compares: what would not arrive
// equal is refused, named.

// roundTrip decodes raw, the JSON encoding of arg, into a new T, as a
// worker does, and reports how the result differs from arg ("" if it does
// not): where (the field, element or key) and why.
func roundTrip[T any](arg T, raw []byte) string {
	var back T
	if err := json.Unmarshal(raw, &back); err != nil {
		return "its JSON encoding does not decode into a " + reflect.TypeFor[T]().String() + ": " + err.Error()
	}
	return differs(reflect.ValueOf(&arg).Elem(), reflect.ValueOf(&back).Elem(), "")
}

// differs reports the first place where a, the argument, and b, the same
// after its trip through JSON, differ, and how; "" if they are equal.
// A type with an Equal method (time.Time) is compared with it: its JSON
// form need not keep what Equal ignores (a monotonic clock reading).
func differs(a, b reflect.Value, path string) string {
	where := "the argument"
	if path != "" {
		where = "the argument's " + path
	}
	if a.IsValid() != b.IsValid() {
		return where + " is lost"
	}
	if !a.IsValid() {
		return ""
	}
	if a.Type() != b.Type() {
		return fmt.Sprintf("%s holds a value of type %s, which arrives as %s", where, a.Type(), b.Type())
	}
	if eq, ok := equalMethod(a, b); ok {
		if eq {
			return ""
		}
		return fmt.Sprintf("%s is %s, which arrives as %s (not Equal)", where, show(a), show(b))
	}
	switch a.Kind() {
	case reflect.String:
		s := a.String()
		if s == b.String() {
			return ""
		}
		if !utf8.ValidString(s) {
			return fmt.Sprintf("%s is not valid UTF-8 (byte %d of %+q), and JSON carries text: it would arrive as %+q",
				where, badByte(s), s, b.String())
		}
		return fmt.Sprintf("%s is %+q, which arrives as %+q", where, s, b.String())
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() == b.IsNil() {
				return ""
			}
			return fmt.Sprintf("%s is %s, which arrives as %s", where, show(a), show(b))
		}
		return differs(a.Elem(), b.Elem(), path)
	case reflect.Slice, reflect.Array:
		if a.Kind() == reflect.Slice && a.IsNil() != b.IsNil() {
			return fmt.Sprintf("%s is %s, which arrives as %s", where, show(a), show(b))
		}
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s has %d elements, which arrive as %d", where, a.Len(), b.Len())
		}
		for i := range a.Len() {
			if d := differs(a.Index(i), b.Index(i), path+"["+strconv.Itoa(i)+"]"); d != "" {
				return d
			}
		}
		return ""
	case reflect.Map:
		if a.IsNil() != b.IsNil() {
			return fmt.Sprintf("%s is %s, which arrives as %s", where, show(a), show(b))
		}
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s has %d keys, which arrive as %d", where, a.Len(), b.Len())
		}
		for it := a.MapRange(); it.Next(); {
			k := it.Key()
			at := path + "[" + show(k) + "]"
			bv := b.MapIndex(k)
			if !bv.IsValid() {
				return "the argument's " + at + " is lost"
			}
			if d := differs(it.Value(), bv, at); d != "" {
				return d
			}
		}
		return ""
	case reflect.Struct:
		t := a.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			at := f.Name
			if path != "" {
				at = path + "." + f.Name
			}
			if !f.IsExported() {
				if !a.Field(i).IsZero() {
					return fmt.Sprintf("the argument's field %s is unexported: JSON leaves it out, so it would arrive as zero", at)
				}
				continue
			}
			if d := differs(a.Field(i), b.Field(i), at); d != "" {
				return d
			}
		}
		return ""
	}
	if a.Comparable() && a.Equal(b) {
		return ""
	}
	return fmt.Sprintf("%s is %s, which arrives as %s", where, show(a), show(b))
}

// equalMethod compares a and b with their type's Equal method, if it has
// one that takes the same type and reports a bool.
func equalMethod(a, b reflect.Value) (equal, ok bool) {
	if !a.CanInterface() || !b.CanInterface() {
		return false, false
	}
	m, found := a.Type().MethodByName("Equal")
	if !found || m.Type.NumIn() != 2 || m.Type.In(1) != a.Type() || m.Type.NumOut() != 1 || m.Type.Out(0).Kind() != reflect.Bool {
		return false, false
	}
	return m.Func.Call([]reflect.Value{a, b})[0].Bool(), true
}

// show formats v for a message, also where it cannot be an interface (an
// unexported field's).
func show(v reflect.Value) string {
	if !v.IsValid() {
		return "nothing"
	}
	if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface || v.Kind() == reflect.Slice || v.Kind() == reflect.Map) && v.IsNil() {
		return "nil"
	}
	if v.CanInterface() {
		return fmt.Sprintf("%#v", v.Interface())
	}
	return "a " + v.Type().String()
}

// badByte is the offset of the first byte of s that is not valid UTF-8.
func badByte(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return i
			}
		}
	}
	return len(s)
}

package multiexit

// Whether a shared hook's argument reaches a worker unchanged: it travels
// as JSON (see Shared.Register), which cannot carry every Go value. A
// string that is not valid UTF-8 arrives with U+FFFD in place of its bad
// bytes (a different, valid path), an unexported field arrives as zero, a
// number held in an interface arrives as a float64. Register decodes the
// encoded argument as a worker will and compares: what would not arrive
// equal is refused, named.

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"unicode/utf8"
)

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

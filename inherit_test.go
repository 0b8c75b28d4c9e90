package multiexit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRegistryRoundTrip(t *testing.T) {
	entries := []*Handle{
		{name: "S", shared: &sharedArg{name: "S", arg: json.RawMessage(`"a:b,c"`)}},
		{name: "own"},
		{name: "L", shared: &sharedArg{name: "L", arg: json.RawMessage(`{"dir":"/tmp/x","n":[1,2]}`)}},
	}
	hooks, err := encodeHooks(entries)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := encodeRegistry(4242, [2]uintptr{3, 4}, hooks)
	if err != nil {
		t.Fatal(err)
	}
	if want := `1:4242:3,4:[{"n":"S","a":"a:b,c"},{"n":"L","a":{"dir":"/tmp/x","n":[1,2]}}]`; enc != want {
		t.Errorf("encoded\n%s\nwant\n%s", enc, want)
	}
	r, err := decodeRegistry(enc)
	if err != nil {
		t.Fatal(err)
	}
	want := &registry{ppid: 4242, ctl: [2]uintptr{3, 4}, hooks: []wireHook{
		{N: "S", A: json.RawMessage(`"a:b,c"`)},
		{N: "L", A: json.RawMessage(`{"dir":"/tmp/x","n":[1,2]}`)},
	}}
	if diff := cmp.Diff(want, r, cmp.AllowUnexported(registry{})); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
}

func TestRegistryErrorsNameTheProblem(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "byte 0: not a multiexit registry"},
		{"garbage", "byte 0: not a multiexit registry"},
		{"2:1:3,4:[]", `byte 0: unknown format version "2"`},
		{"1:1:3,4", "truncated: want 4 fields"},
		{"1:x:3,4:[]", `byte 2: parent PID "x" is not a positive number`},
		{"1:-5:3,4:[]", `parent PID "-5"`},
		{"1:1:3:[]", `byte 4: control ids "3"`},
		{"1:1:3,y:[]", `control id "y" is not a number`},
		{"1:1:2,4:[]", "byte 4: control id 2 is a standard descriptor"},
		{"1:1:3,3:[]", "byte 6: control id 3 is given twice"},
		{`1:1:3,4:[{"n":"S","a":1}`, "hooks: truncated JSON"},
		{`1:1:3,4:[{"n":"S","a":1]`, "byte 23: hooks: invalid character"},
		{`1:1:3,4:[{"n":"S"}]`, `hook 0 ("S"): no argument`},
		{`1:1:3,4:[{"n":"","a":1}]`, "hook 0: empty name"},
		{`1:1:3,4:[{"n":"S","a":1,"x":2}]`, `unknown field "x"`},
		{`1:1:3,4:[{"n":5,"a":1}]`, "byte 14: hooks: json: cannot unmarshal number"},
		{`1:1:3,4:null`, "found null"},
		{`1:1:3,4:[] x`, "trailing data"},
		{"1:1:3,4:[" + strings.Repeat(" ", MaxRegistry) + "]", "more than the 65536 allowed"},
	} {
		_, err := decodeRegistry(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("decodeRegistry(%.40q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestOversizeRegistryIsRefusedAtStart(t *testing.T) {
	big := strings.Repeat("x", MaxRegistry)
	_, err := encodeRegistry(1, [2]uintptr{3, 4}, `[{"n":"S","a":"`+big+`"}]`)
	if err == nil || !strings.Contains(err.Error(), "more than the 65536 allowed") {
		t.Errorf("err = %v", err)
	}
}

func TestDefineBindsTypedArguments(t *testing.T) {
	type cfg struct{ Dir string }
	var got cfg
	name := fmt.Sprintf("test-typed-%d", typedSeq.Add(1)) // a new name for each run of -count
	Define(name, func(_ context.Context, c cfg) error { got = c; return nil })
	defs.mu.Lock()
	def := defs.byName[name]
	defs.mu.Unlock()
	hook, err := def.bind(json.RawMessage(`{"Dir":"/srv"}`))
	if err != nil {
		t.Fatal(err)
	}
	hook(context.Background())
	if got.Dir != "/srv" {
		t.Errorf("hook got %+v", got)
	}
	if _, err := def.bind(json.RawMessage(`"not an object"`)); err == nil {
		t.Error("a mistyped argument was accepted")
	}
}

var typedSeq atomic.Int64

func FuzzDecodeRegistry(f *testing.F) {
	f.Add(`1:4242:3,4:[{"n":"S","a":"x"}]`)
	f.Add(`1:1:3,4:[]`)
	f.Add(`9:1:3,4:[]`)
	f.Add(`1:1:3,4:[{"n":"S","a":{"k":[1,2,3]}}]`)
	f.Add(`1:1:0,1:[]`)
	f.Add(`1:1:7,7:[]`)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := decodeRegistry(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "multiexit: MULTIEXIT: byte ") {
				t.Fatalf("error does not name the variable and offset: %v", err)
			}
			return
		}
		// The control ids are never standard descriptors, never the
		// same twice.
		if r.ctl[0] < 3 || r.ctl[1] < 3 || r.ctl[0] == r.ctl[1] {
			t.Fatalf("accepted control ids %v", r.ctl)
		}
		// What decodes re-encodes to something that decodes the same.
		var entries []*Handle
		for _, h := range r.hooks {
			entries = append(entries, &Handle{shared: &sharedArg{name: h.N, arg: h.A}})
		}
		hooks, err := encodeHooks(entries)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := encodeRegistry(r.ppid, r.ctl, hooks)
		if err != nil {
			return // re-encoding compacts nothing, but may exceed the limit
		}
		r2, err := decodeRegistry(enc)
		if err != nil {
			t.Fatalf("re-encoded registry does not decode: %v\n%s", err, enc)
		}
		if len(r2.hooks) != len(r.hooks) || r2.ppid != r.ppid || r2.ctl != r.ctl {
			t.Fatalf("round trip changed the registry: %+v vs %+v", r, r2)
		}
	})
}

// What a shared hook's argument becomes on its trip to a worker: equal,
// or the first difference, named.
func TestArgumentRoundTrip(t *testing.T) {
	type inner struct{ Dirs []string }
	type withHidden struct {
		Dir    string
		hidden int
	}
	type withTime struct{ At time.Time }
	type nested struct {
		Name  string
		Inner *inner
		Opts  map[string]any
	}
	now := time.Now() // with a monotonic clock reading and the local zone: Equal, not ==
	for _, tc := range []struct {
		name string
		got  string // roundTripOf(the argument)
		want string // a part of it; "" for none
	}{
		{"a path", roundTripOf("/var/spool/app"), ""},
		{"a path that is not UTF-8", roundTripOf("/var/spool/caf\xe9"),
			`the argument is not valid UTF-8 (byte 14 of "/var/spool/caf\xe9"), and JSON carries text: it would arrive as "/var/spool/caf\ufffd"`},
		{"an unexported field, zero", roundTripOf(withHidden{Dir: "/x"}), ""},
		{"an unexported field, set", roundTripOf(withHidden{Dir: "/x", hidden: 3}),
			"the argument's field hidden is unexported: JSON leaves it out, so it would arrive as zero"},
		{"a time", roundTripOf(withTime{At: now}), ""},
		{"deep", roundTripOf(nested{Name: "n", Inner: &inner{Dirs: []string{"/a", "/b\xff"}}}),
			`the argument's Inner.Dirs[1] is not valid UTF-8 (byte 2 of "/b\xff")`},
		{"a number in an interface", roundTripOf(nested{Name: "n", Opts: map[string]any{"depth": 3}}),
			`the argument's Opts["depth"] holds a value of type int, which arrives as float64`},
		{"what JSON keeps in an interface", roundTripOf(nested{Opts: map[string]any{"k": "v", "l": []any{"x", true, nil, 1.5}}}), ""},
		{"an empty slice", roundTripOf([]string{}), ""},
		{"a nil pointer", roundTripOf(nested{}), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == "" && tc.got != "" || tc.want != "" && !strings.Contains(tc.got, tc.want) {
				t.Errorf("roundTrip = %q, want %q", tc.got, tc.want)
			}
		})
	}
}

// roundTripOf is roundTrip on arg's own JSON encoding.
func roundTripOf[T any](arg T) string {
	raw, err := json.Marshal(arg)
	if err != nil {
		return "encode: " + err.Error()
	}
	return roundTrip(arg, raw)
}

var sharedPath = Define("test-path", func(context.Context, string) error { return nil })

// Register refuses a shared hook's argument that would not arrive equal:
// the hook runs here, and Start names it and the problem.
func TestRegisterRefusesALossyArgument(t *testing.T) {
	h := sharedPath.Register("/var/spool/caf\xe9")
	defer h.Unregister()
	if h.hook == nil {
		t.Fatal("the hook does not run here")
	}
	_, err := encodeHooks([]*Handle{h})
	want := `multiexit: shared hook "test-path": its argument would not reach workers unchanged: the argument is not valid UTF-8 (byte 14`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("encodeHooks: %v, want an error starting %q", err, want)
	}
	ok := sharedPath.Register("/var/spool/app")
	defer ok.Unregister()
	if ok.shared.err != nil {
		t.Errorf("a plain path refused: %v", ok.shared.err)
	}
}

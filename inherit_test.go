package multiexit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

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

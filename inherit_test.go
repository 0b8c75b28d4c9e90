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
	"github.com/multiexit/multiexit/internal/ctl"
)

// The root's constants are the registry's: go doc shows the root's, and
// internal/ctl encodes with its own.
func TestEnvContract(t *testing.T) {
	if EnvVar != ctl.EnvVar || MaxRegistry != ctl.MaxRegistry {
		t.Errorf("EnvVar %q, MaxRegistry %d; internal/ctl has %q, %d", EnvVar, MaxRegistry, ctl.EnvVar, ctl.MaxRegistry)
	}
}

// Start's shared hooks reach the registry, in the order registered, and
// decode as they were.
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
	enc, err := ctl.Encode(4242, [2]uintptr{3, 4}, hooks)
	if err != nil {
		t.Fatal(err)
	}
	if want := `1:4242:3,4:[{"n":"S","a":"a:b,c"},{"n":"L","a":{"dir":"/tmp/x","n":[1,2]}}]`; enc != want {
		t.Errorf("encoded\n%s\nwant\n%s", enc, want)
	}
	r, err := ctl.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	want := &ctl.Registry{PPID: 4242, IDs: [2]uintptr{3, 4}, Hooks: []ctl.Hook{
		{N: "S", A: json.RawMessage(`"a:b,c"`)},
		{N: "L", A: json.RawMessage(`{"dir":"/tmp/x","n":[1,2]}`)},
	}}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
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

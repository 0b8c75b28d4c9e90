package ctl

import (
	"encoding/json"
	"strings"
	"testing"
)

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
		_, err := Decode(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Decode(%.40q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestOversizeRegistryIsRefusedAtStart(t *testing.T) {
	big := strings.Repeat("x", MaxRegistry)
	_, err := Encode(1, [2]uintptr{3, 4}, `[{"n":"S","a":"`+big+`"}]`)
	if err == nil || !strings.Contains(err.Error(), "more than the 65536 allowed") {
		t.Errorf("err = %v", err)
	}
}

func FuzzDecodeRegistry(f *testing.F) {
	f.Add(`1:4242:3,4:[{"n":"S","a":"x"}]`)
	f.Add(`1:1:3,4:[]`)
	f.Add(`9:1:3,4:[]`)
	f.Add(`1:1:3,4:[{"n":"S","a":{"k":[1,2,3]}}]`)
	f.Add(`1:1:0,1:[]`)
	f.Add(`1:1:7,7:[]`)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Decode(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "multiexit: MULTIEXIT: byte ") {
				t.Fatalf("error does not name the variable and offset: %v", err)
			}
			return
		}
		// The control ids are never standard descriptors, never the
		// same twice.
		if r.IDs[0] < 3 || r.IDs[1] < 3 || r.IDs[0] == r.IDs[1] {
			t.Fatalf("accepted control ids %v", r.IDs)
		}
		// What decodes re-encodes to something that decodes the same.
		hooks, err := json.Marshal(r.Hooks)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := Encode(r.PPID, r.IDs, string(hooks))
		if err != nil {
			return // re-encoding compacts nothing, but may exceed the limit
		}
		r2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-encoded registry does not decode: %v\n%s", err, enc)
		}
		if len(r2.Hooks) != len(r.Hooks) || r2.PPID != r.PPID || r2.IDs != r.IDs {
			t.Fatalf("round trip changed the registry: %+v vs %+v", r, r2)
		}
	})
}

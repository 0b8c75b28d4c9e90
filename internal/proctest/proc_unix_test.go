//go:build unix

package proctest

import (
	"os/exec"
	"strings"
	"testing"
)

// A process's lines, standard error and status, as Start and End give
// them; the tag's cleanup proves that it left nothing.
func TestStartEnd(t *testing.T) {
	for _, tc := range []struct{ script, how string }{
		{"echo one; echo two; echo oops >&2; exit 3", "exit 3"},
		{"echo one; echo two; echo oops >&2; kill -TERM $$", "signal terminated"},
	} {
		p := Start(t, exec.Command("sh", "-c", tc.script), Options{})
		lines, how := p.End()
		if strings.Join(lines, ",") != "one,two" || how != tc.how || p.Stderr.String() != "oops\n" {
			t.Errorf("%q: lines %q, %s, stderr %q; want one, two, %s, oops", tc.script, lines, how, p.Stderr.String(), tc.how)
		}
	}
}

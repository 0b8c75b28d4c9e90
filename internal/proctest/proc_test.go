package proctest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLines(t *testing.T) {
	l := NewLines(t, strings.NewReader("boot\r\nready a 12\r\nnoise\r\nready b 34\r\nlast\r\n"), "\r")
	if got := l.WaitFor("ready"); got != "ready a 12" {
		t.Errorf("WaitFor: %q", got)
	}
	if d := cmp.Diff(map[string]int{"ready b ": 34}, l.PIDs("ready b ")); d != "" {
		t.Errorf("PIDs (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"boot", "ready a 12", "noise", "ready b 34", "last"}, l.Rest()); d != "" {
		t.Errorf("Rest (-want +got):\n%s", d)
	}
	if _, ok := l.Next(); ok {
		t.Error("Next after the end")
	}
}

func TestLinesWaitAllInAnyOrder(t *testing.T) {
	l := NewLines(t, strings.NewReader("ready w 2\nready main 1\n"), "")
	want := map[string]string{"ready main": "ready main 1", "ready w": "ready w 2"}
	if d := cmp.Diff(want, l.WaitAll("ready main", "ready w")); d != "" {
		t.Errorf("WaitAll (-want +got):\n%s", d)
	}
}

func TestLastPID(t *testing.T) {
	for line, want := range map[string]int{"ready w 42": 42, "job 7": 7, "": 0, "no pid": 0} {
		if got := LastPID(line); got != want {
			t.Errorf("LastPID(%q) = %d, want %d", line, got, want)
		}
	}
}

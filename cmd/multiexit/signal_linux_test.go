package main_test

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// logger is a COMMAND that says each signal it gets, and keeps a member in
// its process group that says the signals it gets too. It exits 7 on
// SIGTERM and 5 on SIGINT. (The member, a background job of a
// non-interactive shell, ignores SIGQUIT and SIGINT for good.)
const logger = `for s in HUP QUIT USR1 USR2 WINCH; do trap "echo got $s" $s; done
trap 'echo got TERM; exit 7' TERM; trap 'echo got INT; exit 5' INT
(for s in HUP USR1 USR2 WINCH; do trap "echo member got $s" $s; done
 trap 'exit 0' TERM; echo member ready; while :; do sleep 1000 & wait $!; done) &
echo ready; while :; do sleep 1000 & wait $!; done`

var passedOn = []syscall.Signal{syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

// name is a signal as the shell's trap names it.
func name(sig syscall.Signal) string {
	return map[syscall.Signal]string{
		syscall.SIGHUP: "HUP", syscall.SIGQUIT: "QUIT", syscall.SIGUSR1: "USR1", syscall.SIGUSR2: "USR2",
		syscall.SIGWINCH: "WINCH", syscall.SIGTERM: "TERM", syscall.SIGINT: "INT",
	}[sig]
}

// SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH reach COMMAND alone and
// stop nothing; SIGTERM and SIGINT reach it, and multiexit then exits with
// its status. With -g each reaches COMMAND's whole process group.
func TestForwarding(t *testing.T) {
	t.Parallel()
	for _, last := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		for _, group := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s group=%v", name(last), group), func(t *testing.T) {
				t.Parallel()
				args := []string{"-grace", "100ms", "--", "sh", "-c", logger}
				if group {
					args = append([]string{"-g"}, args...)
				}
				p := start(t, nil, args...)
				p.WaitAll("ready", "member ready")
				for _, sig := range passedOn {
					p.Signal(sig)
					if group && sig != syscall.SIGQUIT {
						p.WaitAll("got "+name(sig), "member got "+name(sig))
					} else {
						p.WaitFor("got " + name(sig))
					}
				}
				p.Signal(last)
				p.WaitFor("got " + name(last))
				p.Rest()
				want := map[syscall.Signal]string{syscall.SIGTERM: "exit 7", syscall.SIGINT: "exit 5"}[last]
				p.check(want)
				members := slices.DeleteFunc(slices.Clone(p.Seen), func(l string) bool { return !strings.HasPrefix(l, "member got") })
				if !group && len(members) > 0 {
					t.Errorf("without -g the member got signals: %q", members)
				}
			})
		}
	}
}

// A COMMAND that ignores SIGTERM is given the grace period after it, then
// its group is killed; the rest of the tree goes as ever.
func TestSIGTERMIgnored(t *testing.T) {
	t.Parallel()
	p := start(t, nil, "-grace", "100ms", "--", "sh", "-c", `trap "echo got TERM" TERM; `+makeEscapees+`while :; do sleep 1000 & wait $!; done`)
	p.Watch(escapeeNames...)
	p.Signal(syscall.SIGTERM)
	p.WaitFor("got TERM")
	p.check(deathStatus(syscall.SIGKILL))
	p.Gone()
	if !strings.Contains(p.Stderr.String(), "did not exit within the grace period") {
		t.Errorf("the kill is not reported:\n%s", p.Stderr.String())
	}
}

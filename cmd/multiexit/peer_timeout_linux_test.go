package main_test

// coreutils' tests of GNU timeout (tests/timeout/*), adapted: each runs
// against multiexit -timeout and against timeout. multiexit has no
// --signal, --kill-after, --preserve-status, --foreground or --verbose:
// the lines that test those are left out.

import (
	"os/exec"
	"strings"
	"testing"
)

// timeoutTools are multiexit and GNU timeout, each to be given a
// duration and a COMMAND (timed).
var timeoutTools = []tool{{name: "multiexit"}, {name: "timeout", argv: []string{"timeout"}}}

// timed is tl's command line that runs command with the time limit d.
func timed(tl tool, d string, command ...string) []string {
	if tl.isMultiexit() {
		return append([]string{bin, "-timeout", d, "--"}, command...)
	}
	if strings.HasPrefix(d, "-") {
		return append([]string{"timeout", "--", d}, command...)
	}
	return append([]string{"timeout", d}, command...)
}

type timeoutCase struct {
	name, d string
	command []string
	want    string
	// newer: a line of a coreutils test newer than the timeout installed
	// here may fail; the control then says so and skips.
	newer bool
}

func runTimeoutCases(t *testing.T, cases []timeoutCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			each(t, timeoutTools, func(t *testing.T, tl tool) {
				argv := timed(tl, tc.d, tc.command...)
				p := startProgram(t, nil, argv[0], argv[1:]...)
				p.in.Close()
				_, how := p.End()
				if how != tc.want && !tl.isMultiexit() && tc.newer {
					out, _ := exec.Command("timeout", "--version").Output()
					version, _, _ := strings.Cut(string(out), "\n")
					t.Skipf("%s ended with %s: it predates this line of coreutils' tests (want %s)", version, how, tc.want)
				}
				p.Ended(how, tc.want)
			})
		})
	}
}

// tests/timeout/timeout.sh: statuses, with and without the limit firing.
func TestTimeoutBasics(t *testing.T) {
	t.Parallel()
	runTimeoutCases(t, []timeoutCase{
		{"no timeout", "10", []string{"true"}, "exit 0", false},
		{"suffix d", "1d", []string{"true"}, "exit 0", false},
		{"disabled", "0", []string{"true"}, "exit 0", false},
		{"status passed on", "10", []string{"sh", "-c", "exit 2"}, "exit 2", false},
		{"timeout", ".1", []string{"sleep", "10"}, "exit 124", false},
	})
	t.Run("SIGCHLD ignored by the caller", func(t *testing.T) {
		t.Parallel()
		each(t, timeoutTools, func(t *testing.T, tl tool) {
			p := startProgram(t, nil, "sh", append([]string{"-c", `trap '' CHLD; exec "$@"`, "sh"}, timed(tl, "10", "true")...)...)
			p.check("exit 0")
		})
	})
	// Bug#9098: started with a child of its own (the shell's sleep, which
	// exec left to it), the tool is not confused by its exit. (The
	// original waits 2s for COMMAND's echo; here COMMAND waits for ever.)
	t.Run("started with a child", func(t *testing.T) {
		t.Parallel()
		each(t, timeoutTools, func(t *testing.T, tl tool) {
			p := startProgram(t, nil, "sh", append([]string{"-c", `sleep .1 & exec "$@"`, "sh"}, timed(tl, ".5", "sh", "-c", "sleep 1000; echo foo")...)...)
			lines, how := p.End()
			p.Ended(how, "exit 124")
			if len(lines) > 0 {
				t.Errorf("COMMAND said %q", lines)
			}
		})
	})
}

// tests/timeout/timeout-parameters.sh: 125 for the tool's own errors, 126
// for a COMMAND that cannot be executed, 127 for one not found.
func TestTimeoutParameters(t *testing.T) {
	t.Parallel()
	runTimeoutCases(t, []timeoutCase{
		{"invalid", "invalid", []string{"sleep", "0"}, "exit 125", false},
		{"invalid suffix", "42D", []string{"sleep", "0"}, "exit 125", false},
		{"floating point", "10.34", []string{"sleep", "0"}, "exit 0", false},
		{"nanoseconds", "9.999999999", []string{"sleep", "0"}, "exit 0", false},
		{"not executable", "10", []string{"."}, "exit 126", false},
		{"not found", "10", []string{"no_such"}, "exit 127", false},
		{"empty name", "10", []string{""}, "exit 127", false},
	})
}

// tests/timeout/timeout-large-parameters.sh: a duration too long for the
// tool means practically never, not an error; one too short to represent
// fires at once. (And the lines of issue 22: past Go's time.Duration.)
func TestTimeoutLargeParameters(t *testing.T) {
	t.Parallel()
	const ldblMax = "1.18973149535723176502e+4932"
	runTimeoutCases(t, []timeoutCase{
		{"UINT_OFLOW", "4294967296", []string{"sleep", "0"}, "exit 0", false},
		{"TIME_T_OFLOW days", "9223372036854775808d", []string{"sleep", "0"}, "exit 0", false},
		{"floating point days", "2.34e+5d", []string{"sleep", "0"}, "exit 0", false},
		{"LDBL_MAX", ldblMax, []string{"sleep", "0"}, "exit 0", false},
		{"-LDBL_MAX", "-" + ldblMax, []string{"sleep", "0"}, "exit 125", false},
		{"underflow", "1e-5000", []string{"sleep", "10"}, "exit 124", true},
		{"past time.Duration", "9223372036854775808", []string{"sleep", "0"}, "exit 0", false},
		{"past time.Duration in hours", "5616000h", []string{"sleep", "0"}, "exit 0", false},
		{"below a nanosecond", "1e-10", []string{"sleep", "10"}, "exit 124", false},
	})
}

// tests/timeout/timeout-blocked.pl: SIGALRM blocked by the caller does not
// keep the limit from firing.
func TestTimeoutBlockedSIGALRM(t *testing.T) {
	t.Parallel()
	each(t, timeoutTools, func(t *testing.T, tl tool) {
		argv := append([]string{"-c", sigLauncher}, timed(tl, ".1", "sleep", "10")...)
		p := startProgram(t, []string{"IGNORE=", "BLOCK=14"}, python(t), argv...)
		p.check("exit 124")
	})
}

// tests/timeout/init-parent.sh: with init as its parent (a container's
// entrypoint), the tool times COMMAND as ever.
func TestTimeoutInitParent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ d, sleep, want string }{{"10", "0", "exit 0"}, {".1", "10", "exit 124"}} {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			each(t, timeoutTools, func(t *testing.T, tl tool) {
				argv := asPID1(t, timed(tl, tc.d, "sleep", tc.sleep))
				p := startProgram(t, nil, argv[0], argv[1:]...)
				p.check(tc.want)
			})
		})
	}
}

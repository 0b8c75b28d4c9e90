package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Every exit code of COMMAND is multiexit's.
func TestExitCodesPassThrough(t *testing.T) {
	t.Parallel()
	for code := range 256 {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			t.Parallel()
			got, stderr := runStatus(t, "--", "sh", "-c", fmt.Sprintf("exit %d", code))
			if want := fmt.Sprintf("exit %d", code); got != want {
				t.Errorf("ended with %s, want %s; stderr:\n%s", got, want, stderr)
			}
			if stderr != "" {
				t.Errorf("standard error should be empty, got:\n%s", stderr)
			}
		})
	}
}

// fatal are the signals whose default action ends a process.
var fatal = []syscall.Signal{
	syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGILL, syscall.SIGTRAP, syscall.SIGABRT,
	syscall.SIGBUS, syscall.SIGFPE, syscall.SIGKILL, syscall.SIGUSR1, syscall.SIGSEGV, syscall.SIGUSR2,
	syscall.SIGPIPE, syscall.SIGALRM, syscall.SIGTERM, syscall.SIGSTKFLT, syscall.SIGXCPU, syscall.SIGXFSZ,
	syscall.SIGVTALRM, syscall.SIGPROF, syscall.SIGIO, syscall.SIGPWR, syscall.SIGSYS,
}

// A COMMAND killed by a signal ends multiexit by the same signal.
func TestSignalDeathsPassThrough(t *testing.T) {
	t.Parallel()
	for _, sig := range fatal {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			// ulimit -c 0: no core dumps of the signals that make one.
			got, stderr := runStatus(t, "--", "sh", "-c", fmt.Sprintf("ulimit -c 0; kill -%d $$", int(sig)))
			if want := deathStatus(sig); got != want {
				t.Errorf("ended with %s, want %s; stderr:\n%s", got, want, stderr)
			}
		})
	}
}

// multiexit's own statuses, as GNU timeout and env have them.
func TestOwnStatuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\nexit 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// No #! line: /bin/sh runs it, as execvp(3) does for tini and timeout.
	noShebang := filepath.Join(dir, "no-shebang")
	if err := os.WriteFile(noShebang, []byte("exit $1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		want   string
		stderr string
	}{
		{"timeout", []string{"-timeout", "1ms", "--", "sleep", "1000"}, "exit 124", ""},
		{"timeout in seconds", []string{"-timeout", "0.001", "--", "sleep", "1000"}, "exit 124", ""},
		{"in time", []string{"-timeout", "1h", "--", "sh", "-c", "exit 9"}, "exit 9", ""},
		{"negative duration", []string{"-grace", "-1s", "--", "true"}, "exit 125", "negative"},
		{"no COMMAND", []string{"-grace", "1s"}, "exit 125", "no COMMAND"},
		{"bad flag", []string{"-no-such-flag", "--", "true"}, "exit 125", "-no-such-flag"},
		{"bad duration", []string{"-timeout", "soon", "--", "true"}, "exit 125", "soon"},
		{"bad -e", []string{"-e", "256", "--", "true"}, "exit 125", "256"},
		{"not executable", []string{"--", notExec}, "exit 126", "permission denied"},
		{"a directory", []string{"--", dir}, "exit 126", "permission denied"},
		{"a directory in PATH", []string{"--", "."}, "exit 126", "multiexit: .: permission denied"},
		{"an empty name", []string{"--", ""}, "exit 127", "multiexit: '': no such file or directory"},
		{"not found in PATH", []string{"--", "multiexit-no-such-command"}, "exit 127", "not found"},
		{"no such file", []string{"--", filepath.Join(dir, "none")}, "exit 127", "no such file"},
		{"a script without #!", []string{"--", noShebang, "6"}, "exit 6", ""},
		{"-e remaps", []string{"-e", "3", "-e", "4", "--", "sh", "-c", "exit 4"}, "exit 0", ""},
		{"-e remaps only its codes", []string{"-e", "3", "--", "sh", "-c", "exit 4"}, "exit 4", ""},
		{"-h", []string{"-h"}, "exit 0", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, stderr := runStatus(t, tc.args...)
			if got != tc.want {
				t.Errorf("ended with %s, want %s; stderr:\n%s", got, tc.want, stderr)
			}
			if !strings.Contains(stderr, tc.stderr) || (tc.stderr == "" && stderr != "") {
				t.Errorf("standard error should say %q, got:\n%s", tc.stderr, stderr)
			}
		})
	}
}

// -h is the manual, on standard output, with an example per scenario.
func TestHelp(t *testing.T) {
	t.Parallel()
	p := start(t, nil, "-h")
	p.Rest()
	p.check("exit 0")
	out := strings.Join(p.Seen, "\n")
	for _, want := range []string{"SYNOPSIS", "EXIT STATUS", "SIGNALS", "EXAMPLES", "-timeout", "-grace", "ENTRYPOINT", "Type=notify", "DIFFERENCES", "WATCHDOG"} {
		if !strings.Contains(out, want) {
			t.Errorf("-h does not say %q", want)
		}
	}
}

// deathStatus is how multiexit ends when COMMAND was killed by sig: by
// the same signal.
func deathStatus(sig syscall.Signal) string { return "signal " + sig.String() }

package main_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// With SIGPIPE ignored by its caller, COMMAND writing to a pipe whose
// reader is gone gets EPIPE and says so, as it does without multiexit,
// instead of dying by SIGPIPE, as in issue 22's
//
//	(trap '' PIPE; multiexit -timeout 10 -- yes | :)
func TestCallerIgnoredSIGPIPE(t *testing.T) {
	t.Parallel()
	needCgo(t)
	each(t, []tool{mx("-timeout", "10"), bare}, func(t *testing.T, tl tool) {
		// yes's status is the first of the pipeline's: bash's PIPESTATUS.
		script := `trap '' PIPE; "$@" yes | :; echo "status ${PIPESTATUS[0]}"`
		p := startProgram(t, nil, "bash", append([]string{"-c", script, "bash"}, tl.command()...)...)
		if got := p.WaitFor("status "); got != "status 1" {
			t.Errorf("yes ended with %s, want status 1 (its write error)", got)
		}
		p.check("exit 0")
		if !strings.Contains(p.Stderr.String(), "yes: standard output: Broken pipe") {
			t.Errorf("yes did not report the broken pipe; stderr:\n%s", p.Stderr.String())
		}
	})
}

// commandSignals runs tl with COMMAND `cat /proc/self/status`, started by
// sigLauncher with the signals ignore ignored and block blocked, and
// returns the signals COMMAND ignores and blocks.
func commandSignals(t *testing.T, tl tool, ignore, block []syscall.Signal) (ignored, blocked []syscall.Signal) {
	t.Helper()
	list := func(sigs []syscall.Signal) string {
		var s []string
		for _, sig := range sigs {
			s = append(s, strconv.Itoa(int(sig)))
		}
		return strings.Join(s, ",")
	}
	argv := append([]string{"-c", sigLauncher}, tl.command("cat", "/proc/self/status")...)
	p := startProgram(t, []string{"IGNORE=" + list(ignore), "BLOCK=" + list(block)}, python(t), argv...)
	lines, how := p.End()
	p.Ended(how, "exit 0")
	sets := map[string][]syscall.Signal{}
	for _, l := range lines {
		k, v, _ := strings.Cut(l, ":")
		if k == "SigIgn" || k == "SigBlk" {
			bits, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			for sig := syscall.Signal(1); sig <= 64; sig++ {
				if bits&(1<<(sig-1)) != 0 {
					sets[k] = append(sets[k], sig)
				}
			}
		}
	}
	return sets["SigIgn"], sets["SigBlk"]
}

// missing is what of want is not in got, by name.
func missing(want, got []syscall.Signal) []string {
	var out []string
	for _, sig := range want {
		if !slices.Contains(got, sig) {
			out = append(out, signalName(sig))
		}
	}
	return out
}

// COMMAND ignores what multiexit's caller ignored and blocks what it
// blocked: signals that multiexit forwards (SIGTERM, SIGQUIT, SIGUSR1,
// SIGPIPE), signals the Go runtime must handle itself (SIGSEGV, SIGCHLD,
// SIGPROF), and a real-time one. The control runs COMMAND bare.
func TestCallerSignalConfiguration(t *testing.T) {
	t.Parallel()
	needCgo(t)
	ignore := []syscall.Signal{syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGPIPE, syscall.SIGSEGV,
		syscall.SIGCHLD, syscall.SIGPROF, syscall.SIGHUP, syscall.Signal(40)}
	block := []syscall.Signal{syscall.SIGUSR2, syscall.SIGALRM, syscall.SIGTERM, syscall.SIGINT, syscall.SIGILL,
		syscall.SIGURG, syscall.Signal(50)}
	each(t, []tool{mx(), bare}, func(t *testing.T, tl tool) {
		ignored, blocked := commandSignals(t, tl, ignore, block)
		if m := missing(ignore, ignored); len(m) > 0 {
			t.Errorf("COMMAND does not ignore %v (it ignores %v)", m, names(ignored))
		}
		if m := missing(block, blocked); len(m) > 0 {
			t.Errorf("COMMAND does not block %v (it blocks %v)", m, names(blocked))
		}
	})
}

func names(sigs []syscall.Signal) []string {
	var out []string
	for _, sig := range sigs {
		out = append(out, signalName(sig))
	}
	return out
}

// A signal multiexit's caller ignored is ignored by multiexit too, not
// forwarded: COMMAND would ignore it (SIGUSR1 here); SIGUSR2, not
// ignored, is forwarded after it and is the first signal COMMAND reports.
func TestCallerIgnoredNotForwarded(t *testing.T) {
	t.Parallel()
	needCgo(t)
	p := startProgram(t, []string{"IGNORE=" + strconv.Itoa(int(syscall.SIGUSR1)), "BLOCK="}, python(t),
		append([]string{"-c", sigLauncher}, mx().command(python(t), "-c", printSignals)...)...)
	p.WaitFor("ready ")
	for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGUSR2} {
		if err := syscall.Kill(p.Cmd.Process.Pid, sig); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.WaitFor("got "); got != fmt.Sprintf("got %d", syscall.SIGUSR2) {
		t.Errorf("COMMAND says %q, want the SIGUSR2 only", got)
	}
	p.say("exit 0")
	p.Rest()
	p.check("exit 0")
}

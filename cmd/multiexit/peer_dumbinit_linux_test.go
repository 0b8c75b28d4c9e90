package main_test

// dumb-init's own tests (tests/*.py), adapted: each runs against
// multiexit and against dumb-init.

import (
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/multiexit/multiexit/internal/proctest"
	"golang.org/x/sys/unix"
)

// dumbInitSignals are dumb-init's NORMAL_SIGNALS: 1 to 31 but SIGKILL,
// SIGSTOP, SIGCHLD and the job-control SIGTSTP, SIGTTOU and SIGTTIN.
func dumbInitSignals() []syscall.Signal {
	var out []syscall.Signal
	for sig := syscall.Signal(1); sig < 32; sig++ {
		switch sig {
		case syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGCHLD, syscall.SIGTSTP, syscall.SIGTTOU, syscall.SIGTTIN:
			continue
		}
		out = append(out, sig)
	}
	return out
}

// dumb-init's proxies_signals test: each of the 25 signals sent to the
// tool reaches COMMAND.
func TestDumbInitProxiesSignals(t *testing.T) {
	t.Parallel()
	each(t, []tool{mx(), dumbInit()}, func(t *testing.T, tl tool) {
		p := startTool(t, tl, nil, python(t), "-c", printSignals)
		p.WaitFor("ready ")
		for _, sig := range dumbInitSignals() {
			if tl.isMultiexit() && inCOnly(sig) && !withCgo(t) {
				t.Logf("%s: not forwarded by a multiexit built without cgo", signalName(sig))
				continue
			}
			p.Signal(sig)
			if got := p.WaitFor("got "); got != fmt.Sprintf("got %d", sig) {
				t.Errorf("after %s COMMAND says %q", signalName(sig), got)
			}
		}
		p.say("exit 0")
		p.Rest()
		p.check("exit 0")
	})
}

// dumb-init's exit status tests: COMMAND's exit code is the tool's; a
// COMMAND killed by a signal makes dumb-init exit 128+signal, and
// multiexit die by the same signal (on purpose: see TestTiniSignals).
func TestDumbInitExitStatus(t *testing.T) {
	t.Parallel()
	for _, code := range []int{0, 1, 2, 32, 64, 127, 254, 255} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			t.Parallel()
			each(t, []tool{mx(), dumbInit()}, func(t *testing.T, tl tool) {
				p := startTool(t, tl, nil, "sh", "-c", fmt.Sprintf("exit %d", code))
				p.check(fmt.Sprintf("exit %d", code))
			})
		})
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGKILL} {
		t.Run(signalName(sig), func(t *testing.T) {
			t.Parallel()
			each(t, []tool{mx(), dumbInit()}, func(t *testing.T, tl tool) {
				// ulimit -c 0: SIGQUIT dumps no core.
				p := startTool(t, tl, nil, "sh", "-c", fmt.Sprintf(`ulimit -c 0; exec %s -c "import os; os.kill(os.getpid(), %d)"`, python(t), sig))
				want := fmt.Sprintf("exit %d", 128+int(sig))
				if tl.isMultiexit() {
					want = deathStatus(sig)
				}
				p.check(want)
			})
		})
	}
}

// dumb-init's child_processes tests, setsid mode: SIGTERM to the tool
// ends COMMAND's whole process group. multiexit sends it to COMMAND alone
// (with -g, to the group) and, when COMMAND exits, stops what is left:
// its group is gone when multiexit returns; dumb-init's, soon after.
func TestDumbInitSignalsEntireGroup(t *testing.T) {
	t.Parallel()
	each(t, []tool{mx(), dumbInit()}, func(t *testing.T, tl tool) {
		p := startTool(t, tl, nil, "sh", "-c", `sleep 1000 & echo "a $!"; sleep 1000 & echo "b $!"; echo ready; wait`)
		fds := p.Watch("a ", "b ")
		p.WaitFor("ready")
		p.Signal(syscall.SIGTERM)
		p.check(deathStatusOf(tl, syscall.SIGTERM))
		if tl.isMultiexit() {
			p.Gone()
		}
		for what, fd := range fds {
			if !proctest.Exited(fd, limit) {
				t.Errorf("%s is still running %v after the tool exited", what, limit)
			}
		}
	})
}

// deathStatusOf is how tl ends when COMMAND dies by sig: multiexit by the
// same signal, the peers with 128+signal.
func deathStatusOf(tl tool, sig syscall.Signal) string {
	if tl.isMultiexit() {
		return deathStatus(sig)
	}
	return fmt.Sprintf("exit %d", 128+int(sig))
}

// dumb-init's test that, in setsid mode, what COMMAND left in its group
// gets SIGTERM when COMMAND exits. dumb-init exits then; multiexit waits
// the grace period for it and then kills it (a short one here).
func TestDumbInitTermOnExit(t *testing.T) {
	t.Parallel()
	each(t, []tool{mx("-grace", "100ms"), dumbInit()}, func(t *testing.T, tl tool) {
		p := startTool(t, tl, nil, "sh", "-c", `"$0" -c "$1" & read _`, python(t), printSignals)
		p.WaitFor("ready ")
		p.say("done")
		if got := p.WaitFor("got "); got != fmt.Sprintf("got %d", syscall.SIGTERM) {
			t.Errorf("what COMMAND left says %q, want got %d", got, syscall.SIGTERM)
		}
		p.check("exit 0")
		if !tl.isMultiexit() {
			killLeftovers(p) // dumb-init leaves it running
		}
	})
}

// dumb-init's bad exec test: a COMMAND that does not exist fails the tool
// with a message naming it.
func TestDumbInitBadExec(t *testing.T) {
	t.Parallel()
	each(t, []tool{mx(), dumbInit()}, func(t *testing.T, tl tool) {
		p := startTool(t, tl, nil, "/doesnotexist")
		lines, how := p.End()
		if how == "exit 0" || !strings.Contains(strings.ToLower(p.Stderr.String()), "/doesnotexist: no such file or directory") {
			t.Errorf("ended with %s; stdout %q, stderr:\n%s", how, lines, p.Stderr.String())
		}
	})
}

// dumb-init's shell background test, without setsid: SIGTSTP, SIGTTOU and
// SIGTTIN reach COMMAND, then SIGCONT does. (dumb-init -c then stops
// itself; multiexit stopping with COMMAND is its job control's.)
func TestDumbInitJobControlSignals(t *testing.T) {
	t.Parallel()
	each(t, []tool{mx(), dumbInit("-c")}, func(t *testing.T, tl tool) {
		p := startTool(t, tl, nil, python(t), "-c", printSignals)
		p.WaitFor("ready ")
		for _, sig := range []syscall.Signal{syscall.SIGTSTP, syscall.SIGTTOU, syscall.SIGTTIN} {
			p.Signal(sig)
			if got := p.WaitFor("got "); got != fmt.Sprintf("got %d", sig) {
				t.Errorf("after %s COMMAND says %q", signalName(sig), got)
			}
			if !tl.isMultiexit() {
				// dumb-init stops itself after forwarding: a SIGCONT sent
				// before would be lost (its test waits with WUNTRACED).
				var info unix.Siginfo
				if err := unix.Waitid(unix.P_PID, p.Cmd.Process.Pid, &info, unix.WSTOPPED|unix.WNOWAIT, nil); err != nil {
					t.Fatal(err)
				}
			}
			p.Signal(syscall.SIGCONT)
			if got := p.WaitFor("got "); got != fmt.Sprintf("got %d", syscall.SIGCONT) {
				t.Errorf("after SIGCONT COMMAND says %q", got)
			}
		}
		p.say("exit 0")
		p.Rest()
		p.check("exit 0")
	})
}

// dumb-init's working directory test: COMMAND starts in the directory the
// tool was started in; the tool itself moves to "/", so that it does not
// keep that directory busy (tini stays in it).
func TestDumbInitWorkingDirectory(t *testing.T) {
	t.Parallel()
	each(t, []tool{mx(), dumbInit()}, func(t *testing.T, tl tool) {
		workingDirectories(t, tl)
	})
}

// workingDirectories runs tl in /tmp and fails t unless the tool's working
// directory is "/" and COMMAND's /tmp. COMMAND waits (a bounded while) for
// the tool to leave /tmp: catatonit does so only after starting it.
func workingDirectories(t *testing.T, tl tool) {
	t.Helper()
	argv := tl.command("sh", "-c", `i=0; while [ "$(readlink /proc/$PPID/cwd)" != / ] && [ $i -lt 200 ]; do sleep 0.01; i=$((i+1)); done
readlink /proc/$PPID/cwd && readlink /proc/$$/cwd`)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = "/tmp"
	p := &prog{Proc: proctest.Start(t, cmd, proctest.Options{Limit: limit}), t: t}
	lines, how := p.End()
	p.Ended(how, "exit 0")
	if len(lines) > 0 && lines[0] != "/" && tl.name == "catatonit" {
		out, _ := exec.Command("catatonit", "--version").Output()
		t.Skipf("%s stays in its working directory: it predates catatonit.c's chdir(\"/\")", strings.TrimSpace(string(out)))
	}
	if strings.Join(lines, " ") != "/ /tmp" {
		t.Errorf("the tool's and COMMAND's working directories: %q, want / and /tmp", lines)
	}
}

package main_test

// tini's own tests (test/run_inner_tests.py, test/run_outer_tests.py,
// test/sigconf), adapted: each runs against multiexit and against tini.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// tini's exit code test: -e CODE turns CODE into 0, and only CODE.
func TestTiniExitCodes(t *testing.T) {
	t.Parallel()
	for _, code := range []int{0, 1, 2, 64, 126, 127, 128, 143, 254, 255} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			var others []string
			for x := range 256 {
				if x != code {
					others = append(others, "-e", strconv.Itoa(x))
				}
			}
			exit := fmt.Sprintf("exit %d", code)
			each(t, []tool{mx("-e", strconv.Itoa(code)), tini("-e", strconv.Itoa(code))}, func(t *testing.T, tl tool) {
				p := startTool(t, tl, nil, "sh", "-c", exit)
				p.check("exit 0")
			})
			t.Run("others", func(t *testing.T) {
				each(t, []tool{mx(others...), tini(others...)}, func(t *testing.T, tl tool) {
					p := startTool(t, tl, nil, "sh", "-c", exit)
					p.check(exit)
				})
			})
		})
	}
}

// tini's reaping test: COMMAND starts a process that starts 100 short
// ones and exits without waiting for them; the orphans reparent to the
// tool (a subreaper; tini -s), which reaps each as it exits.
//
// Then the tool's children: tini has one, COMMAND. multiexit on the cgroup
// layer has two, on purpose: COMMAND and its guardian, which kills the
// tree's cgroup if multiexit is SIGKILLed (tini's test, which waits for
// COMMAND to be the only child of its init, would wait for ever).
func TestTiniReaping(t *testing.T) {
	t.Parallel()
	stage1 := `f=$1/pids
sh -c 'for i in $(seq 100); do sleep 0.$((i % 3 + 1)) & echo $! >>"$0"; done' "$f"
for pid in $(cat "$f"); do while [ -e /proc/$pid ]; do sleep 0.01; done; done
echo reaped
read _`
	each(t, []tool{mx(), tini()}, func(t *testing.T, tl tool) {
		p := startTool(t, tl, nil, "sh", "-c", stage1, "sh", t.TempDir())
		p.WaitFor("reaped")
		kids := childrenOf(t, p.Cmd.Process.Pid)
		want := 1
		if tl.isMultiexit() && onCgroupLayer(t, kids) {
			want = 2 // the guardian
		}
		if len(kids) != want {
			t.Errorf("%s has %d children (%v), want %d", tl.name, len(kids), kids, want)
		}
		p.say("done")
		p.check("exit 0")
	})
}

// childrenOf is pid's children.
func childrenOf(t *testing.T, pid int) []int {
	t.Helper()
	var kids []int
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, f := range strings.Fields(string(b)) {
			k, _ := strconv.Atoi(f)
			kids = append(kids, k)
		}
	}
	return kids
}

// onCgroupLayer reports whether one of kids is multiexit's guardian: the
// same binary as multiexit (it is multiexit, re-executed), outside
// COMMAND's cgroup.
func onCgroupLayer(t *testing.T, kids []int) bool {
	t.Helper()
	for _, k := range kids {
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", k)); exe == bin {
			return true
		}
	}
	return false
}

// tini's signals test (inner as a normal process, outer as a container's
// PID 1): COMMAND, with SIGTERM, SIGUSR1 and SIGUSR2 at their defaults,
// runs a child (os.system); the signal sent to the tool, once that child
// runs (tini's test waits for it too), kills COMMAND.
//
// As PID 1 both tools exit 128+signal. As a normal process multiexit dies
// by the signal itself, on purpose, as GNU timeout does: a shell shows
// 143 all the same, but the caller's wait status says "killed by
// SIGTERM", which systemd counts as a clean stop and bash uses to stop a
// script's loop after a Ctrl-C'd child; Python's subprocess says
// returncode -15 (tini: 143).
func TestTiniSignals(t *testing.T) {
	t.Parallel()
	command := func(py string) []string {
		return []string{py, "-c", `import os, signal
for s in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
    signal.signal(s, signal.SIG_DFL)
os.system("echo ready; exec sleep 1000")`}
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2} {
		for _, pid1 := range []bool{false, true} {
			name := signalName(sig)
			if pid1 {
				name += "/pid1"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				each(t, []tool{mx(), tini()}, func(t *testing.T, tl tool) {
					argv := tl.command(command(python(t))...)
					if pid1 {
						argv = asPID1(t, argv)
					}
					p := startProgram(t, nil, argv[0], argv[1:]...)
					p.WaitFor("ready")
					target := p.Cmd.Process.Pid
					if pid1 {
						target = init1(t, p)
					}
					syscall.Kill(target, sig)
					want := fmt.Sprintf("exit %d", 128+int(sig))
					if tl.isMultiexit() && !pid1 {
						want = deathStatus(sig) // the difference on purpose
					}
					p.check(want)
					if !tl.isMultiexit() {
						killLeftovers(p) // tini leaves COMMAND's sleep running
					}
				})
			})
		}
	}
}

// tini's process group test (-g): COMMAND ignores SIGUSR1 and waits for a
// child that does not; SIGUSR1 to the tool reaches the child through the
// group, the child dies, COMMAND exits 0, and so does the tool.
func TestTiniProcessGroup(t *testing.T) {
	t.Parallel()
	each(t, []tool{mx("-g", "-grace", "1h"), tini("-g")}, func(t *testing.T, tl tool) {
		p := startTool(t, tl, nil, python(t), "-c", `import signal, subprocess
signal.signal(signal.SIGUSR1, signal.SIG_IGN)
c = subprocess.Popen(["sleep", "1000"], preexec_fn=lambda: signal.signal(signal.SIGUSR1, signal.SIG_DFL))
print("ready", flush=True)
c.wait()`)
		p.WaitFor("ready")
		p.Signal(syscall.SIGUSR1)
		p.check("exit 0")
	})
}

// tini's signal configuration test: started with SIGTTOU, SIGSEGV and
// SIGINT ignored and SIGTTIN, SIGILL and SIGTERM blocked, the tool runs
// COMMAND with them still ignored and blocked.
func TestTiniSignalConfiguration(t *testing.T) {
	t.Parallel()
	ignore := []syscall.Signal{syscall.SIGTTOU, syscall.SIGSEGV, syscall.SIGINT}
	block := []syscall.Signal{syscall.SIGTTIN, syscall.SIGILL, syscall.SIGTERM}
	each(t, []tool{mx(), tini()}, func(t *testing.T, tl tool) {
		if tl.isMultiexit() {
			needCgo(t)
		}
		ignored, blocked := commandSignals(t, tl, ignore, block)
		if m := missing(ignore, ignored); len(m) > 0 {
			t.Errorf("%v is missing in COMMAND's SigIgn (%v)", m, names(ignored))
		}
		if m := missing(block, blocked); len(m) > 0 {
			t.Errorf("%v is missing in COMMAND's SigBlk (%v)", m, names(blocked))
		}
	})
}

// tini's outer exit code tests: a COMMAND that is not found is 127.
func TestTiniCommandNotFound(t *testing.T) {
	t.Parallel()
	each(t, []tool{mx(), tini()}, func(t *testing.T, tl tool) {
		p := startTool(t, tl, nil, "zzzz")
		p.check("exit 127")
	})
}

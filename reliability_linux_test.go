package multiexit_test

// Regression tests for defects found by trying the library as a new user
// would: deep trees, shell-outs, slow or broken workers, forged
// environments. Each scenario sits next to the test that runs it.

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/multiexit/multiexit"
)

// scenario registers f as the scenario name and returns the name.
func scenario(name string, f func(args []string)) string {
	if _, dup := scenarios[name]; dup {
		panic("scenario " + name + " registered twice")
	}
	scenarios[name] = f
	return name
}

// stubbornLeaf ignores SIGTERM, and so does its background child, and
// starts an escapee (setsid) that ignores it too.
const stubbornLeaf = `trap '' TERM; setsid sh -c "trap '' TERM; echo ready escapee; exec sleep 1000" & sleep 1000 & echo ready leaf; wait`

// deepTree: main → L1 → … → Ldepth, each a worker with its own hook and
// the inherited shared hook S; the deepest starts a stubborn leaf. Default
// options: the grace periods of every level must fit in one budget.
var deepTree = scenario("deep-tree", func(args []string) {
	mustInstall()
	level := 0
	if multiexit.IsChild() {
		level, _ = strconv.Atoi(strings.TrimPrefix(role(), "L"))
		args = args[1:]
	}
	depth, _ := strconv.Atoi(args[0])
	how := args[1]
	name := role()
	if level == 0 {
		sharedS.Register("s")
	}
	multiexit.Register(func(context.Context) error {
		say("%s own", name)
		return nil
	})
	if level < depth {
		mustStart(multiexit.Command(append([]string{fmt.Sprintf("L%d", level+1)}, args...)...))
	} else {
		leaf := exec.Command("sh", "-c", stubbornLeaf)
		leaf.Stdout = os.Stdout
		mustStart(leaf)
	}
	say("ready %s", name)
	if level == 0 && how == "exit" {
		// Wait for the whole tree to be up: the test says so on stdin.
		io.ReadAll(os.Stdin)
		multiexit.Exit(0)
	}
	select {}
})

// Every level's hooks run, leaves first, whether the top is stopped by
// SIGTERM, by Exit or dies by SIGKILL, with a leaf that ignores SIGTERM
// and an escapee at the bottom, with the default grace (5 s) and deadline
// (20 s) at every level.
func TestDeepTreeRunsEveryLevelsHooks(t *testing.T) {
	for _, depth := range []int{1, 2, 3} {
		for _, how := range []string{"term", "exit", "kill"} {
			t.Run(fmt.Sprintf("depth %d, %s", depth, how), func(t *testing.T) {
				var stdin io.WriteCloser
				p := startWith(t, func(cmd *exec.Cmd) {
					var err error
					if stdin, err = cmd.StdinPipe(); err != nil {
						t.Fatal(err)
					}
				}, deepTree, []string{strconv.Itoa(depth), how})
				want := []string{"ready main", "ready leaf", "ready escapee"}
				var order []string
				for l := depth; l >= 1; l-- {
					want = append(want, fmt.Sprintf("ready L%d", l))
					order = append(order, fmt.Sprintf("L%d own", l), fmt.Sprintf("L%d S(s)", l))
				}
				p.waitAll(want...)
				wantHow := diedOf(syscall.SIGTERM)
				switch how {
				case "term":
					p.signal(syscall.SIGTERM)
					order = append(order, "main own", "main S(s)")
				case "exit":
					stdin.Close()
					order = append(order, "main own", "main S(s)")
					wantHow = exitCode(0)
				case "kill":
					p.signal(syscall.SIGKILL)
					wantHow = diedOf(syscall.SIGKILL)
				}
				trace, ended := p.end()
				var hooks []string
				for _, l := range trace {
					if strings.HasSuffix(l, " own") || strings.HasSuffix(l, " S(s)") {
						hooks = append(hooks, l)
					}
				}
				if diff := cmp.Diff(order, hooks); diff != "" || ended != wantHow {
					t.Errorf("ended with %s (want %s); hooks (-want +got):\n%s\nstderr:\n%s", ended, wantHow, diff, p.stderr.String())
				}
			})
		}
	}
}

// shellOuts runs n commands the way a daemon shells out, each leaving a
// short-lived background process behind (a plain one and a double-forked
// one), with a child whose status is waited for late, and reports the
// zombies left.
var shellOuts = scenario("shell-outs", func(args []string) {
	n, _ := strconv.Atoi(args[0])
	multiexit.Run(func(ctx context.Context) error {
		late := exec.Command("sh", "-c", "exit 7")
		if err := late.Start(); err != nil {
			return err
		}
		waitZombie(late.Process.Pid) // it exited; its status is Wait's
		for i := range n {
			script := "true &"
			if i%2 == 1 {
				script = "(true &)"
			}
			if err := exec.Command("sh", "-c", script).Run(); err != nil {
				return err
			}
		}
		say("late Wait: %v", late.Wait())
		say("layer %v; zombies left: %d", multiexit.Containment(), zombiesLeft())
		return nil
	})
})

// waitZombie waits until the child pid has exited (and is not reaped).
func waitZombie(pid int) {
	for state(pid) != "Z" {
		time.Sleep(time.Millisecond)
	}
}

func state(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
}

// zombiesLeft counts this process's zombie children once the last of its
// background processes has exited and the reaper has had the time to see
// it: it waits (up to 10 s) for the count to reach 0.
func zombiesLeft() int {
	count := func() int {
		n := 0
		tasks, _ := filepath.Glob("/proc/self/task/*/children")
		for _, f := range tasks {
			b, _ := os.ReadFile(f)
			for _, pid := range strings.Fields(string(b)) {
				p, _ := strconv.Atoi(pid)
				if state(p) == "Z" {
					n++
				}
			}
		}
		return n
	}
	end := time.Now().Add(10 * time.Second)
	for count() > 0 && time.Now().Before(end) {
		time.Sleep(10 * time.Millisecond)
	}
	return count()
}

// A daemon that shells out a thousand times, each command leaving a
// background process, holds no zombie afterwards on any layer, and a child
// waited for seconds after it exited still gets its own status.
func TestShellOutsLeaveNoZombies(t *testing.T) {
	for _, layer := range layers(t) {
		t.Run(layer, func(t *testing.T) {
			p := start(t, shellOuts, []string{"1000"}, multiexit.ContainmentVar+"="+layer)
			p.check([]string{"late Wait: exit status 7", "layer " + layer + "; zombies left: 0"}, exitCode(0))
			p.quiet()
		})
	}
}

// startJobs starts n entries of one short job each, leaving a background
// process behind, waits for each, and reports what is left once those
// background processes are gone: stack entries, cgroups, zombies.
var startJobs = scenario("start-jobs", func(args []string) {
	n, _ := strconv.Atoi(args[0])
	mustInstall(multiexit.WithGrace(time.Second))
	before := multiexit.StackLen()
	mustStart(exec.Command("true"))[0].Wait() // the first Start starts the guardian for good
	fds := countFDs()
	for i := range n {
		script := args[1]
		if i%2 == 1 {
			script = "(" + args[1] + ")"
		}
		kids := mustStart(exec.Command("sh", "-c", script))
		kids[0].Wait()
	}
	// Released as their background processes end.
	end := time.Now().Add(10 * time.Second)
	for multiexit.StackLen() > before && time.Now().Before(end) {
		time.Sleep(10 * time.Millisecond)
	}
	left, _ := filepath.Glob(fmt.Sprintf("/sys/fs/cgroup/unified/multiexit.*.%d.*/e*", os.Getpid()))
	left2, _ := filepath.Glob(fmt.Sprintf("/sys/fs/cgroup/multiexit.*.%d.*/e*", os.Getpid()))
	say("entries left: %d; cgroups left: %d; zombies left: %d; descriptors: %d more",
		multiexit.StackLen()-before, len(left)+len(left2), zombiesLeft(), countFDs()-fds)
	multiexit.Exit(0)
})

// Start entries whose child exits at once, leaving a background process,
// are released (entry and cgroup) once that process is gone too, and none
// of those processes is left a zombie — also one that dies before the
// reaper could see it alive.
func TestFinishedEntriesAreReleased(t *testing.T) {
	for _, layer := range layers(t) {
		if layer == "process-group" {
			continue // it releases an entry when its children are gone: the rest is out of its reach
		}
		for _, job := range []string{"sleep 0.1 &", "/bin/true &"} {
			t.Run(layer+", "+job, func(t *testing.T) {
				p := start(t, startJobs, []string{"50", job}, multiexit.ContainmentVar+"="+layer)
				p.check([]string{"entries left: 0; cgroups left: 0; zombies left: 0; descriptors: 0 more"}, exitCode(0))
				p.quiet()
			})
		}
	}
}

// chain starts a chain of n processes, each in a session of its own and
// ignoring SIGTERM, each the parent of the next.
func chain(n int) string {
	script := `echo ready chain; exec sleep 1000`
	for range n {
		script = `trap '' TERM; setsid sh -c '` + strings.ReplaceAll(script, `'`, `'\''`) + `' & wait`
	}
	return script
}

var chainEntry = scenario("chain", func(args []string) {
	mustInstall(multiexit.WithGrace(300 * time.Millisecond))
	multiexit.Register(hook("H1"))
	cmd := exec.Command("sh", "-c", chain(5))
	cmd.Stdout = os.Stdout
	mustStart(cmd)
	multiexit.Register(hook("H2"))
	say("ready main")
	select {}
})

// On the subreaper layer, as on the cgroup layer, a chain of escapees that
// ignore SIGTERM is killed at the end of one grace period: no generation of
// orphans gets a grace period of its own.
func TestOneGracePeriodPerEntry(t *testing.T) {
	for _, layer := range layers(t) {
		if layer == "process-group" {
			continue // escapees are out of its reach (see TestEscapeesAreContained)
		}
		t.Run(layer, func(t *testing.T) {
			p := start(t, chainEntry, nil, multiexit.ContainmentVar+"="+layer)
			p.waitAll("ready main", "ready chain")
			p.signal(syscall.SIGTERM)
			p.check([]string{"H2", "H1"}, diedOf(syscall.SIGTERM))
			errLog := p.stderr.String()
			if n := strings.Count(errLog, "did not stop within"); n > 2 {
				t.Errorf("%d grace periods ran out, want at most 2 (the child's, and one for what it left):\n%s", n, errLog)
			}
		})
	}
}

package multiexit_test

// BenchmarkHostileTree: what a less privileged descendant can make the
// root process pay (issue 23, item 1). A job run as user nobody leaves
// orphans that ignore SIGTERM and carry large environments without the
// tree's tag, and keeps a trickle of SIGCHLDs coming (orphans that exit);
// the benchmark measures the parent's Start latency, the CPU it spends while
// idle, its stop (SIGTERM until it has exited) and the CPU of its whole
// life, against the same tree with small environments. They run only with
// -bench; see docs/performance.md for the commands.

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiexit/multiexit"
	"github.com/multiexit/multiexit/internal/proctest"
)

func init() { scenario(hostileTree) }

// hostileTree: as "main" (args: orphans, environment size in KiB), the
// parent installs with a 1 s grace period and starts itself as "spawn",
// which, as root, starts the orphans as user nobody — sleeps that ignore
// SIGTERM, with the environment size asked for and without MULTIEXIT_TREE —
// and a trickle (a shell that leaves an orphan exiting every 10 ms), then
// exits. The parent then times one Start of "true", and says "ready main
// PID start-ns N"; its last hook says "cpu-ns N", its own CPU time.
func hostileTree(args []string) {
	if args[0] == "spawn" {
		spawnHostile(args[1:])
		return
	}
	mustInstall(multiexit.WithGrace(time.Second))
	multiexit.Register(func(contextT) error { // the last hook: the parent's own CPU time
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		say("cpu-ns %d", ru.Utime.Nano()+ru.Stime.Nano())
		return nil
	})
	spawn := exec.Command(os.Args[0], append([]string{"spawn"}, args...)...)
	spawn.Stderr = os.Stderr
	mustStart(spawn)[0].Wait()
	t0 := time.Now()
	mustStart(exec.Command("true"))[0].Wait()
	say("ready main %d start-ns %d", os.Getpid(), time.Since(t0).Nanoseconds())
	select {}
}

func spawnHostile(args []string) {
	n, _ := strconv.Atoi(args[0])
	kib, _ := strconv.Atoi(args[1])
	// As ulimit -s unlimited: execve takes up to a quarter of the stack
	// limit for arguments and environment, at most 6 MiB.
	lim := syscall.Rlimit{Cur: ^uint64(0), Max: ^uint64(0)}
	if err := syscall.Setrlimit(syscall.RLIMIT_STACK, &lim); err != nil {
		panic(err)
	}
	signal.Ignore(syscall.SIGTERM) // inherited across exec
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MULTIEXIT_TREE=") && !strings.HasPrefix(kv, scenarioVar+"=") {
			env = append(env, kv)
		}
	}
	small := env
	const chunk = 120 << 10 // under MAX_ARG_STRLEN (128 KiB)
	for i := 0; kib > 0; i++ {
		size := min(kib<<10, chunk)
		env = append(env, fmt.Sprintf("BIG%d=%s", i, strings.Repeat("x", size)))
		kib -= size >> 10
	}
	nobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	for range n {
		cmd := exec.Command("sleep", "1000")
		cmd.Env, cmd.SysProcAttr = env, nobody
		if err := cmd.Start(); err != nil {
			panic(err)
		}
	}
	trickle := exec.Command("sh", "-c", "while :; do (sleep 0.01 &); sleep 0.01; done")
	trickle.Env, trickle.SysProcAttr = small, nobody
	if err := trickle.Start(); err != nil {
		panic(err)
	}
	os.Exit(0)
}

// BenchmarkHostileTree: see the file's comment. One op is one tree:
// launched (untimed), idle for a second, stopped (timed). Metrics:
// start-ms, the parent's Start of "true" with the tree in place;
// idle-cpu-ms/s, the parent's CPU time per second while idle with the
// trickle; stop-ms, SIGTERM until the parent exited (its orphans gone);
// cpu-ms, the parent's CPU time over its whole life.
func BenchmarkHostileTree(b *testing.B) {
	if os.Getuid() != 0 {
		b.Skip("needs root (the orphans run as user nobody)")
	}
	if !cgroupWritable() {
		b.Skip("needs a writable cgroup v2: on the subreaper layer untagged orphans are out of reach")
	}
	for _, n := range []int{100, 400} {
		for _, kib := range []int{4, 6000} {
			b.Run(fmt.Sprintf("orphans=%d/env=%dKiB", n, kib), func(b *testing.B) {
				tag := proctest.Tag(b)
				var start, idle, stop, cpu time.Duration
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					s, id, st, c := hostileRound(b, tag, n, kib)
					start, idle, stop, cpu = start+s, idle+id, stop+st, cpu+c
					b.StartTimer()
				}
				per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
				b.ReportMetric(per(start), "start-ms")
				b.ReportMetric(per(idle), "idle-cpu-ms/s")
				b.ReportMetric(per(stop), "stop-ms")
				b.ReportMetric(per(cpu), "cpu-ms")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// hostileRound runs one tree (see BenchmarkHostileTree) and returns its
// measures.
func hostileRound(b *testing.B, tag string, n, kib int) (start, idle, stop, cpu time.Duration) {
	cmd := exec.Command(os.Args[0], strconv.Itoa(n), strconv.Itoa(kib))
	cmd.Env = append(os.Environ(), scenarioEnv(hostileTree), proctest.Env(tag))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	watchdog := time.AfterFunc(5*time.Minute, func() { cmd.Process.Kill() })
	defer watchdog.Stop()
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	var pid int
	var ns int64
	if _, err2 := fmt.Sscanf(line, "ready main %d start-ns %d", &pid, &ns); err != nil || err2 != nil {
		cmd.Process.Kill()
		cmd.Wait()
		b.Fatalf("parent said %q (%v)", line, err)
	}
	c0 := cpuOf(pid)
	time.Sleep(time.Second)
	idle = cpuOf(pid) - c0
	b.StartTimer()
	t0 := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	rest, _ := io.ReadAll(out)
	cmd.Wait()
	stop = time.Since(t0)
	b.StopTimer()
	var cpuNS int64
	if _, err := fmt.Sscanf(string(rest), "cpu-ns %d", &cpuNS); err != nil {
		b.Fatalf("parent said %q at its end (%v)", rest, err)
	}
	if left := proctest.Survivors(tag); len(left) > 0 {
		b.Fatalf("left behind: %d processes, %v…", len(left), left[0])
	}
	return time.Duration(ns), idle, stop, time.Duration(cpuNS)
}

// cpuOf is the CPU time (user and system) that process pid has used.
func cpuOf(pid int) time.Duration {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+k) * time.Second / 100 // USER_HZ
}

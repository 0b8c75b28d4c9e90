//go:build unix

package multiexit_test

// Benchmarks of whole process trees: Start until every worker acknowledged
// Install, and the shutdown of a parent with N workers, from SIGTERM until
// every process of the tree is gone. The test binary plays the parent and
// its workers (scenario "bench-pool"). They run only with -bench; see
// docs/performance.md for the commands.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiexit/multiexit"
	"github.com/multiexit/multiexit/internal/proctest"
)

func init() { scenario(benchPool) }

const benchLogVar = "MX_BENCH_LOG"

// appendStopLines is a worker's hook: two lines appended to the log file,
// the job the benchmark's workers do when they stop.
func appendStopLines(context.Context) error {
	f, err := os.OpenFile(os.Getenv(benchLogVar), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	pid := strconv.Itoa(os.Getpid())
	f.WriteString("stopping " + pid + "\n")
	f.WriteString("stopped " + pid + "\n")
	return f.Close()
}

// benchPool: the parent installs, says "installed", and on a line "go" from
// the benchmark starts args[0] workers and says "started". Each worker
// registers appendStopLines and installs.
func benchPool(args []string) {
	if multiexit.IsChild() {
		multiexit.Register(appendStopLines)
		if err := multiexit.Install(); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		select {}
	}
	if err := multiexit.Install(); err != nil {
		fmt.Fprintln(os.Stderr, "parent:", err)
		os.Exit(1)
	}
	n, _ := strconv.Atoi(args[0])
	cmds := make([]*exec.Cmd, n)
	for i := range cmds {
		cmds[i] = multiexit.Command()
	}
	os.Stdout.WriteString("installed\n")
	if line, _ := bufio.NewReader(os.Stdin).ReadString('\n'); line != "go\n" {
		multiexit.Exit(3)
	}
	if _, err := multiexit.Start(cmds...); err != nil {
		fmt.Fprintln(os.Stderr, "parent:", err)
		multiexit.Exit(1)
	}
	os.Stdout.WriteString("started\n")
	select {}
}

// benchTree is one "bench-pool" parent run by a benchmark.
type benchTree struct {
	b     *testing.B
	n     int
	log   string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	kill  *time.Timer
}

// launchTree starts a parent that will start n workers, and waits until it
// has installed.
func launchTree(b *testing.B, tag string, n int, log string) *benchTree {
	if err := os.WriteFile(log, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], strconv.Itoa(n))
	cmd.Env = append(os.Environ(), scenarioEnv(benchPool), proctest.Env(tag), benchLogVar+"="+log)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	t := &benchTree{b: b, n: n, log: log, cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	// A watchdog, so that a broken tree fails the benchmark instead of
	// hanging it: it kills the parent, whose workers then stop on
	// parent death.
	t.kill = time.AfterFunc(5*time.Minute, func() { cmd.Process.Kill() })
	t.expect("installed")
	return t
}

func (t *benchTree) expect(line string) {
	got, err := t.out.ReadString('\n')
	if got != line+"\n" {
		t.cmd.Process.Kill()
		t.cmd.Wait()
		t.b.Fatalf("parent said %q (%v), want %q", got, err, line)
	}
}

// start has the parent start its workers and waits until Start returned.
func (t *benchTree) start() {
	if _, err := io.WriteString(t.stdin, "go\n"); err != nil {
		t.b.Fatal(err)
	}
	t.expect("started")
}

// term sends SIGTERM to the parent and waits until every process of the
// tree is gone: they all hold the parent's standard output, so its end of
// file is the last one's exit.
func (t *benchTree) term() {
	if err := t.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.b.Fatal(err)
	}
	rest, _ := io.ReadAll(t.out)
	err := t.cmd.Wait()
	t.kill.Stop()
	if ws, _ := t.cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM || len(rest) > 0 {
		t.b.Fatalf("parent ended with %v, output %q", err, rest)
	}
}

// check verifies that every worker ran its hook.
func (t *benchTree) check() {
	data, err := os.ReadFile(t.log)
	if err != nil {
		t.b.Fatal(err)
	}
	if got := strings.Count(string(data), "\n"); got != 2*t.n {
		t.b.Fatalf("log has %d lines, want %d (two per worker)", got, 2*t.n)
	}
}

// BenchmarkStart is multiexit.Start of N workers until every one has
// acknowledged Install (Start returned). One op is one Start call.
func BenchmarkStart(b *testing.B) {
	benchTrees(b, []int{1, 64}, timeStart)
}

// BenchmarkShutdown is SIGTERM to a parent with N workers until the parent
// and every worker have exited, each worker having run its hook. One op is
// one shutdown.
func BenchmarkShutdown(b *testing.B) {
	benchTrees(b, []int{1, 8, 64, 256}, timeTerm)
}

// The steps of a benchmark's tree after its launch, of which one is timed.
const (
	timeStart = iota // benchTree.start
	timeTerm         // benchTree.term
)

// benchTrees runs, for each n of sizes, trees of a parent and n workers:
// launched, started, stopped and checked, with only the step timed timed,
// and reports the time per worker too.
func benchTrees(b *testing.B, sizes []int, timed int) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			tag, log := proctest.Tag(b), b.TempDir()+"/log"
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				t := launchTree(b, tag, n, log)
				for step, f := range []func(){t.start, t.term} {
					if step == timed {
						b.StartTimer()
						f()
						b.StopTimer()
					} else {
						f()
					}
				}
				t.check()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/worker")
		})
	}
}

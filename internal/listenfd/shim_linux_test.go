package listenfd_test

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiexit/multiexit/internal/listenfd"
	"github.com/multiexit/multiexit/internal/proctest"
)

// TestShimExecErrors: a command the shim cannot execute fails as os/exec
// would have failed it, with the same error, and the shim exits 127.
func TestShimExecErrors(t *testing.T) {
	dir := t.TempDir()
	noExec := filepath.Join(dir, "data")
	os.WriteFile(noExec, []byte("data\n"), 0o644)
	noShebang := filepath.Join(dir, "script")
	os.WriteFile(noShebang, []byte("echo hi\n"), 0o755)
	s := openT(t, "web", "tcp", "127.0.0.1:0")
	for _, tc := range []struct {
		path string
		want syscall.Errno
	}{
		{filepath.Join(dir, "missing"), syscall.ENOENT},
		{noExec, syscall.EACCES},
		{noShebang, syscall.ENOEXEC},
	} {
		direct := exec.Command(tc.path).Start()
		if direct == nil {
			t.Fatalf("%s started without the shim", tc.path)
		}
		cmd := exec.Command(tc.path)
		h, err := listenfd.Pass(cmd, []*listenfd.Socket{s}, listenfd.AnyProgram)
		if err != nil {
			t.Fatal(err)
		}
		p := proctest.Start(t, cmd, proctest.Options{Limit: time.Minute})
		err = h.Started(nil)
		if err == nil || err.Error() != direct.Error() || !errorsIs(err, tc.want) {
			t.Errorf("through the shim: %v; directly: %v; want errno %v", err, direct, tc.want)
		}
		p.Ended(p.Wait(), "exit 127")
	}
}

func errorsIs(err error, errno syscall.Errno) bool {
	pe, ok := err.(*os.PathError)
	return ok && pe.Err == errno
}

// TestShimKeepsIgnoredSignals: a signal the parent ignores stays ignored
// in the command, as without the shim, although the shim's Go runtime
// catches it while it runs.
func TestShimKeepsIgnoredSignals(t *testing.T) {
	bin := cProgram(t)
	signal.Ignore(syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Reset(syscall.SIGUSR1, syscall.SIGUSR2)
	run := func(cmd *exec.Cmd, socks []*listenfd.Socket) string {
		var p *proctest.Proc
		if socks == nil {
			p = proctest.Start(t, cmd, proctest.Options{Limit: time.Minute})
		} else {
			p = startPassed(t, cmd, socks, listenfd.AnyProgram)
		}
		lines, how := p.End()
		p.Ended(how, "exit 0")
		return strings.Join(lines, "\n")
	}
	direct := run(exec.Command(bin, "sigign"), nil)
	shimmed := run(exec.Command(bin, "sigign"), []*listenfd.Socket{openT(t, "web", "tcp", "127.0.0.1:0")})
	var mask uint64
	fmt.Sscanf(strings.TrimPrefix(direct, "SigIgn:"), "%x", &mask)
	if usr := uint64(1)<<(syscall.SIGUSR1-1) | 1<<(syscall.SIGUSR2-1); mask&usr != usr {
		t.Fatalf("directly: %q, want SIGUSR1 and SIGUSR2 ignored", direct)
	}
	if shimmed != direct {
		t.Errorf("through the shim: %q; directly: %q", shimmed, direct)
	}
}

// TestShimOnlyForItsParent: the variable alone never makes a program a
// shim: a wrong parent, start time or descriptor is refused with a
// warning, the variable is removed, and the program runs normally.
func TestShimOnlyForItsParent(t *testing.T) {
	s := openT(t, "web", "tcp", "127.0.0.1:0")
	self := os.Getpid()
	start := startTimeOf(t, self)
	for _, tc := range []struct {
		name, value, files, why string
	}{
		{"not the parent", fmt.Sprintf("1;%s;4;1;0;/bin/echo", start), "socket+pipe", fmt.Sprintf("process 1 is not this process's parent (%d)", self)},
		{"another start time", fmt.Sprintf("%d;1;4;1;0;/bin/echo", self), "socket+pipe", fmt.Sprintf("process %d started at %q, not at \"1\"", self, start)},
		{"no pipe", fmt.Sprintf("%d;%s;4;1;0;/bin/echo", self, start), "socket", `status descriptor "4" is not a pipe`},
		{"no socket", fmt.Sprintf("%d;%s;4;1;0;/bin/echo", self, start), "pipe+pipe", "descriptor 3 is not a socket"},
		{"short", "1;2", "socket+pipe", "want 6 fields separated by ';', found 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			defer w.Close()
			cmd := scenarioCmd("normal")
			cmd.Env = append(withoutListen(cmd.Env), listenfd.ShimVar+"="+tc.value, "LISTEN_FDS=1")
			switch tc.files {
			case "socket+pipe":
				cmd.ExtraFiles = []*os.File{listenfd.FileOf(s), w}
			case "socket":
				cmd.ExtraFiles = []*os.File{listenfd.FileOf(s)}
			case "pipe+pipe":
				cmd.ExtraFiles = []*os.File{w, w}
			}
			p := proctest.Start(t, cmd, proctest.Options{Limit: time.Minute})
			lines, how := p.End()
			p.Ended(how, "exit 0")
			if got, want := strings.Join(lines, "\n"), listenfd.ShimVar+`=""`; got != "ran normally "+want {
				t.Errorf("output %q, want %q", got, "ran normally "+want)
			}
			wantErr := fmt.Sprintf("multiexit: %s is set, but this process was not started as an exec shim (%s); ignored\n", listenfd.ShimVar, tc.why)
			if got := p.Stderr.String(); got != wantErr {
				t.Errorf("stderr %q, want %q", got, wantErr)
			}
		})
	}
}

func startTimeOf(t *testing.T, pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[19]
}

// BenchmarkShim measures what the shim costs a child's start, in a small
// static program (testdata/shimbench) as a multiexit program would pay it:
// starting /bin/true with a socket and waiting for it, directly ("direct")
// and through the shim ("shim": one more exec, of that program), and, for
// comparison, starting that Go program itself ("go"), which exits at once.
// child-cpu-ns/op is the child's CPU time (user and system), less
// sensitive than the wall time to a loaded machine.
func BenchmarkShim(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "shimbench")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/shimbench").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	for _, mode := range []string{"direct", "shim", "go"} {
		b.Run(mode, func(b *testing.B) {
			out, err := exec.Command(bin, "-n", fmt.Sprint(b.N), "-mode", mode).Output()
			if err != nil {
				b.Fatalf("%s: %v", bin, err)
			}
			var ns, cpu float64
			if _, err := fmt.Sscan(string(out), &ns, &cpu); err != nil {
				b.Fatalf("%s printed %q", bin, out)
			}
			b.ReportMetric(ns, "ns/op")
			b.ReportMetric(cpu, "child-cpu-ns/op")
		})
	}
}

//go:build linux

// Package runctest makes the runc bundles in which the tests of the
// examples and of cmd/multiexit run their programs as a container's PID 1.
package runctest

import (
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiexit/multiexit/internal/proctest"
)

// Rootfs makes, in t's temporary directory, a bundle directory with a
// rootfs, and returns the bundle: a statically linked busybox in /bin with the relative links
// named links (they resolve inside the container; `busybox --install`
// makes absolute ones), a world-writable /tmp, and the Go package pkg
// (from the current directory) built without cgo into /bin. It skips t
// unless it runs as root with runc and a static busybox installed.
// `runc spec --bundle` is left to the caller.
func Rootfs(t testing.TB, pkg string, links ...string) (bundle string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc is not installed")
	}
	busybox := staticBusybox()
	if busybox == "" {
		t.Skip("no statically linked busybox (Debian: busybox-static)")
	}
	bundle = filepath.Join(t.TempDir(), "bundle")
	rootfs := filepath.Join(bundle, "rootfs")
	for _, d := range []string{"bin", "tmp", "proc", "dev", "sys"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(rootfs, "tmp"), 0o1777)
	bb, err := os.ReadFile(busybox)
	if err == nil {
		err = os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), bb, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range links {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", name)); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("go", "build", "-o", filepath.Join(rootfs, "bin")+string(filepath.Separator), pkg)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", build.Args, err, out)
	}
	return bundle
}

// staticBusybox is busybox's path if it is statically linked (a dynamic one
// would not run in the rootfs), else "".
func staticBusybox() string {
	p, err := exec.LookPath("busybox")
	if err != nil {
		return ""
	}
	f, err := elf.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return ""
		}
	}
	return p
}

// Spec writes bundle's config.json (`runc spec`), edited so that the
// container runs args with no terminal, env added to its environment, and
// a writable root.
func Spec(t testing.TB, bundle string, args []string, env ...string) {
	t.Helper()
	if out, err := exec.Command("runc", "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v\n%s", err, out)
	}
	path := filepath.Join(bundle, "config.json")
	var spec map[string]any
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &spec)
	}
	if err != nil {
		t.Fatal(err)
	}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = toAny(args)
	proc["env"] = append(proc["env"].([]any), toAny(env)...)
	spec["root"].(map[string]any)["readonly"] = false
	if b, err = json.Marshal(spec); err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// Container is `runc run` of a bundle in the foreground: its output is read
// line by line (Lines), runc's state is in a directory beside the bundle,
// and runc's exit status is the container's.
type Container struct {
	*proctest.Lines
	ID     string
	root   string // runc --root
	limit  time.Duration
	run    *exec.Cmd
	exited chan struct{}
	stderr proctest.Buffer
}

// Run runs the bundle as container id. Past limit its output is closed,
// so that a hang fails the test. The cleanup kills the container if it
// still runs, and fails t if runc still knows it (and deletes it) or
// knows any other container.
func Run(t testing.TB, bundle, id string, limit time.Duration) *Container {
	t.Helper()
	c := &Container{ID: id, root: filepath.Join(filepath.Dir(bundle), "state"), limit: limit, exited: make(chan struct{})}
	c.run = exec.Command("runc", "--root", c.root, "run", "--bundle", bundle, id)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c.run.Stdout, c.run.Stderr = w, &c.stderr
	c.run.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = c.run.Start()
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	go func() { c.run.Wait(); close(c.exited) }()
	c.Lines = proctest.NewLines(t, r, "")
	guard := time.AfterFunc(limit, func() { r.Close() })
	t.Cleanup(func() {
		guard.Stop()
		select {
		case <-c.exited:
		default:
			c.Runc("kill", id, "KILL")
			<-c.exited
		}
		r.Close()
		if out, err := c.Runc("state", id); err == nil {
			t.Errorf("the container was still there after runc run ended (deleted now): %s", out)
			c.Runc("delete", "--force", id)
		}
		if out, _ := c.Runc("list", "-q"); strings.TrimSpace(out) != "" {
			t.Errorf("runc list: %q", out)
		}
		if s := c.stderr.String(); s != "" {
			t.Logf("runc run's standard error:\n%s", s)
		}
	})
	return c
}

// Runc runs runc with the container's state directory and args to its
// end, bounded by the limit, and returns its combined output.
func (c *Container) Runc(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "runc", append([]string{"--root", c.root}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return string(out), err
}

// End reads the output to its end and returns it with runc run's exit
// status, the container's.
func (c *Container) End() ([]string, int) {
	lines := c.Rest()
	<-c.exited
	return lines, c.run.ProcessState.ExitCode()
}

// Stderr is what runc run wrote to its standard error.
func (c *Container) Stderr() string { return c.stderr.String() }

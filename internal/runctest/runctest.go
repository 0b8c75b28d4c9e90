//go:build linux

// Package runctest makes the runc bundles in which the tests of the
// examples and of cmd/multiexit run their programs as a container's PID 1.
package runctest

import (
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
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

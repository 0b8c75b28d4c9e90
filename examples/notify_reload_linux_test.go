package examples_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// systemd254Var names the root of a systemd of version 253 or later,
// extracted with dpkg -x (.ci/run extracts 254 from bookworm-backports):
// Type=notify-reload needs it, and the machine's own systemd stays as it is.
const systemd254Var = "MULTIEXIT_SYSTEMD_ROOT"

// prefork as a Type=notify-reload unit of a real systemd 254: systemctl
// reload returns once the new generation serves (RELOADING=1 with
// MONOTONIC_USEC, then READY=1: without the timestamp systemd would wait
// out TimeoutStartSec and fail the reload); a reload whose new binary
// cannot start is reported in the unit's status text while the old
// generation serves on; systemctl stop during a reload stops everything,
// the unit's stop a success.
func TestSystemdNotifyReload(t *testing.T) {
	root := os.Getenv(systemd254Var)
	if root == "" {
		t.Skipf("%s is not set: it names a systemd 253 or later extracted with dpkg -x (.ci/run extracts 254 from bookworm-backports)", systemd254Var)
	}
	if _, err := os.Stat(filepath.Join(root, "lib/systemd/systemd")); err != nil {
		t.Skipf("%s=%s: no systemd there: %v", systemd254Var, root, err)
	}
	s := startSystemdFrom(t, root)
	if out, err := s.ctl(t, "systemctl", "--version"); err != nil || !regexp.MustCompile(`^systemd 25[3-9]|^systemd 2[6-9]\d`).MatchString(out) {
		t.Fatalf("systemctl --version: %q %v", out, err)
	}
	// The unit runs a copy, which the test replaces.
	exe := filepath.Join(s.dir, "prefork")
	copyFile(t, filepath.Join(bin, "prefork"), exe)
	u, err := s.runUnit(t, []string{"Type=notify-reload"}, exe, "-addr", "127.0.0.1:0", "-workers", "2")
	if err != nil {
		t.Fatalf("%v\nthe unit's output:\n%s", err, strings.Join(u.output(), "\n"))
	}
	var base string
	for _, l := range u.output() {
		if a, ok := strings.CutPrefix(l, "listening on "); ok {
			base = "http://" + a
		}
	}
	if base == "" {
		t.Fatalf("systemd-run returned before prefork listened; output:\n%s", strings.Join(u.output(), "\n"))
	}
	served := func(want string) {
		t.Helper()
		for range 10 {
			code, body, err := get(base + "/")
			if m := generationOf.FindStringSubmatch(body); err != nil || code != 200 || m == nil || m[2] != want {
				t.Fatalf("GET /: %d %q %v, want generation %s\noutput:\n%s", code, body, err, want, strings.Join(u.output(), "\n"))
			}
		}
	}
	// show is the unit's properties, one "NAME=value" a line, in the
	// order asked for.
	show := func(props ...string) string {
		t.Helper()
		var b strings.Builder
		for _, p := range props {
			out, err := s.ctl(t, "systemctl", "show", u.name, "-p", p)
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(out)
		}
		return b.String()
	}
	served("1")

	// A good reload: systemctl reload returns once it is done.
	if _, err := s.ctl(t, "systemctl", "reload", u.name); err != nil {
		t.Fatalf("%v\noutput:\n%s", err, strings.Join(u.output(), "\n"))
	}
	served("2")
	out := u.output()
	if i := slices.Index(out, "reloaded: generation 2"); i < 0 || countMatch(out[i:], `^worker \d+ generation 1: hooks done$`) != 2 {
		t.Errorf("systemctl reload returned before the old generation stopped; output:\n%s", strings.Join(out, "\n"))
	}
	if st := show("ActiveState", "SubState", "StatusText"); st != "ActiveState=active\nSubState=running\nStatusText=generation 2 serving\n" {
		t.Errorf("after the reload: %q", st)
	}

	// A bad binary: the reload fails, the status says so, generation 2
	// serves on.
	bad := exe + ".bad"
	if err := os.WriteFile(bad, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bad, exe); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ctl(t, "systemctl", "reload", u.name); err != nil {
		t.Fatalf("%v\noutput:\n%s", err, strings.Join(u.output(), "\n"))
	}
	st := show("ActiveState", "SubState", "StatusText")
	if !strings.HasPrefix(st, "ActiveState=active\nSubState=running\nStatusText=reload to generation 3 failed: ") ||
		!strings.Contains(st, "exited before it acknowledged Install: exit status 1") {
		t.Errorf("after a failed reload: %q", st)
	}
	served("2")

	// A reload held: its new workers wait on a FIFO before they run
	// prefork; systemctl stop while it waits.
	held, never := filepath.Join(s.dir, "held"), filepath.Join(s.dir, "never")
	for _, f := range []string{held, never} {
		if err := syscall.Mkfifo(f, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hold := exe + ".hold"
	script := fmt.Sprintf("#!/bin/sh\necho held >%s\nread x <%s\n", held, never)
	if err := os.WriteFile(hold, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(hold, exe); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ctl(t, "systemctl", "reload", "--no-block", u.name); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(held) // returns once a held worker opened it to write
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // open until the end: the other held worker writes too
	b := make([]byte, 5)
	n, _ := f.Read(b)
	if string(b[:n]) != "held\n" {
		t.Fatalf("from the held worker: %q", b[:n])
	}
	if sub := show("SubState"); sub != "SubState=reload-notify\n" {
		dbg, _ := s.ctl(t, "systemctl", "status", "--no-pager", u.name)
		jobs, _ := s.ctl(t, "systemctl", "list-jobs", "--no-pager")
		t.Errorf("while the reload waits: %q, want reload-notify\n%s\n%s", sub, dbg, jobs)
	}
	u.stop() // success, killed by SIGTERM, nothing left
	out = u.output()
	if n := countMatch(out, `^worker \d+ generation 2: hooks done$`); n != 2 {
		t.Errorf("%d workers of generation 2 ran their hooks, want 2; output:\n%s", n, strings.Join(out, "\n"))
	}
}

// countMatch counts the lines that match re.
func countMatch(lines []string, re string) int {
	r := regexp.MustCompile(re)
	n := 0
	for _, l := range lines {
		if r.MatchString(l) {
			n++
		}
	}
	return n
}

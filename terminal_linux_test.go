package multiexit_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/multiexit/multiexit"
	"github.com/multiexit/multiexit/internal/proctest"
)

func init() { scenario(terminal) }

// terminal runs, on its terminal, a child that reads it (head -1) and one
// that the terminal's Ctrl-C stops, each started in the foreground.
func terminal(args []string) {
	mustInstall()
	run := func(name string, argv ...string) {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdin, cmd.Stdout = os.Stdin, os.Stdout
		if args[0] == "foreground" {
			multiexit.Foreground(cmd)
		}
		kids := mustStart(cmd)
		say("ready %s", name)
		say("%s: %v", name, kids[0].Wait())
	}
	run("head", "head", "-1")
	run("sleep", "sleep", "1000")
	pgrp, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	say("foreground back: %v %v", pgrp == unix.Getpgrp(), err)
	multiexit.Exit(0)
}

// openPTY opens a pseudo-terminal: its master, and its slave for a child.
func openPTY(t *testing.T) (master, slave *os.File) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// A child started with Foreground reads the terminal (a line typed there
// reaches head -1), and the terminal's Ctrl-C reaches it; when it exits,
// the parent has the foreground back.
func TestForegroundChildUsesTheTerminal(t *testing.T) {
	master, slave := openPTY(t)
	tag := proctest.Tag(t)
	cmd := exec.Command(os.Args[0], "foreground")
	cmd.Env = append(os.Environ(), scenarioEnv(terminal), proctest.Env(tag), "GORACE=atexit_sleep_ms=0")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(master)
		for sc.Scan() {
			lines <- strings.TrimRight(sc.Text(), "\r")
		}
	}()
	var seen []string
	// The guard only turns a hang into a failure; nothing is timed.
	guard := time.NewTimer(time.Minute)
	defer guard.Stop()
	waitFor := func(want string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the terminal closed before %q; saw %q", want, seen)
				}
				seen = append(seen, l)
				if strings.HasSuffix(l, want) { // after the echo of what was typed
					return
				}
			case <-guard.C:
				cmd.Process.Kill()
				t.Fatalf("no %q on the terminal; saw %q", want, seen)
			}
		}
	}
	waitFor("ready head")
	master.WriteString("a typed line\n")
	waitFor("head: <nil>")
	waitFor("ready sleep")
	master.WriteString("\x03") // Ctrl-C
	waitFor("sleep: signal: interrupt")
	waitFor("foreground back: true <nil>")
	if err := cmd.Wait(); err != nil {
		t.Errorf("ended with %v", err)
	}
	if !slices.Contains(seen, "a typed line") {
		t.Errorf("head did not print the typed line: %q", seen)
	}
}

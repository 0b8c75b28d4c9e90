package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/multiexit/multiexit/internal/proctest"
)

// term is multiexit run as a session leader on a new pseudo-terminal, as a
// shell in a terminal window runs it: the test types on the master side
// and reads what the terminal shows (echo off: only what programs print).
type term struct {
	*proctest.Lines
	t      *testing.T
	cmd    *exec.Cmd
	master *os.File
	waited bool
}

func startTerm(t *testing.T, args ...string) *term {
	t.Helper()
	tag := proctest.Tag(t)
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		master.Close()
		t.Fatal(err)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		master.Close()
		t.Skipf("no pseudo-terminal: %v", err)
	}
	// Echo off: what the terminal shows is what the programs printed.
	tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err == nil {
		tio.Lflag &^= unix.ECHO
		err = unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, tio)
	}
	if err != nil {
		master.Close()
		slave.Close()
		t.Fatal(err)
	}
	tm := &term{Lines: proctest.NewLines(t, master, "\r"), t: t, cmd: exec.Command(bin, args...), master: master}
	tm.cmd.Env = append(os.Environ(), proctest.Env(tag), "GORACE=atexit_sleep_ms=0")
	tm.cmd.Stdin, tm.cmd.Stdout, tm.cmd.Stderr = slave, slave, slave
	tm.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = tm.cmd.Start()
	slave.Close()
	if err != nil {
		master.Close()
		t.Fatal(err)
	}
	timer := time.AfterFunc(limit, func() {
		tm.cmd.Process.Kill()
		master.Close()
	})
	t.Cleanup(func() {
		timer.Stop()
		if !tm.waited {
			tm.cmd.Process.Kill()
			tm.cmd.Wait()
		}
		master.Close()
	})
	return tm
}

func (tm *term) typ(s string) {
	tm.t.Helper()
	if _, err := tm.master.WriteString(s); err != nil {
		tm.t.Fatal(err)
	}
}

func (tm *term) check(want string) {
	tm.t.Helper()
	err := tm.cmd.Wait()
	tm.waited = true
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		tm.t.Fatal(err)
	}
	if got := proctest.How(tm.cmd.ProcessState); got != want {
		tm.t.Errorf("ended with %s, want %s; the terminal showed:\n%s", got, want, strings.Join(tm.Seen, "\n"))
	}
}

// Ctrl-C typed in the terminal stops the tree: COMMAND, in the terminal's
// foreground, dies by SIGINT, so does multiexit (as a shell expects of a
// Ctrl-C'd program), and the background job (a non-interactive shell's
// background jobs ignore SIGINT) and the escapee are stopped after it.
func TestTerminalCtrlC(t *testing.T) {
	t.Parallel()
	tm := startTerm(t, "-grace", "100ms", "--", "sh", "-c",
		`sleep 1000 & echo "job $!"; setsid sh -c 'echo "escapee $$"; exec sleep 1000' & wait`)
	fds := map[string]int{}
	for what, pid := range tm.PIDs("job ", "escapee ") {
		fds[what] = proctest.Pidfd(t, pid)
	}
	tm.typ("\x03")
	tm.check("signal interrupt")
	for what, fd := range fds {
		if !proctest.Exited(fd, 0) {
			t.Errorf("the %s was still running when multiexit had returned", strings.TrimSpace(what))
		}
	}
}

// An interactive COMMAND gets the terminal's foreground: it reads a line
// typed in the terminal (echo is off, so what shows is what it printed),
// and exits as it would in a shell.
func TestTerminalInteractive(t *testing.T) {
	t.Parallel()
	tm := startTerm(t, "--", "head", "-1")
	tm.typ("typed by the test\r")
	tm.WaitFor("typed by the test")
	tm.check("exit 0")
}

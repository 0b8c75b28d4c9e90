package proctest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Term is a process run as the session leader of a new pseudo-terminal, as
// a shell in a terminal window runs it: the test types on the master side
// (Type) and reads what the terminal shows, line by line, with echo off:
// only what the programs print.
type Term struct {
	*Lines
	t      testing.TB
	Cmd    *exec.Cmd
	master *os.File
	waited bool
}

// StartTerm starts cmd on a new pseudo-terminal, its standard input,
// output and error, tagged as Start does; it skips t if the system has no
// pseudo-terminals. Past o.Limit, if set, the process is killed and the
// terminal closed.
func StartTerm(t testing.TB, cmd *exec.Cmd, o Options) *Term {
	t.Helper()
	if o.Tag == "" {
		o.Tag = Tag(t)
	}
	master, slave := openPTY(t)
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, Env(o.Tag), "GORACE=atexit_sleep_ms=0")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err := cmd.Start()
	slave.Close()
	if err != nil {
		master.Close()
		t.Fatal(err)
	}
	tm := &Term{Lines: NewLines(t, hangup{master}, "\r"), t: t, Cmd: cmd, master: master}
	guard(t, cmd, o.Limit, &tm.waited, func() { master.Close() })
	return tm
}

// openPTY opens a pseudo-terminal with echo off: its master, and its
// slave for a child (both close-on-exec, neither the caller's controlling
// terminal).
func openPTY(t testing.TB) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	fail := func(err error) {
		master.Close()
		if slave != nil {
			slave.Close()
		}
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		fail(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		fail(err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		master.Close()
		t.Skipf("no pseudo-terminal: %v", err)
	}
	tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err == nil {
		tio.Lflag &^= unix.ECHO
		err = unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, tio)
	}
	if err != nil {
		fail(err)
	}
	return master, slave
}

// Type writes s on the terminal, as if typed ("\x03" is Ctrl-C).
func (tm *Term) Type(s string) {
	tm.t.Helper()
	if _, err := tm.master.WriteString(s); err != nil {
		tm.t.Fatal(err)
	}
}

// Wait waits for the process and returns how it ended (see How).
func (tm *Term) Wait() string {
	tm.t.Helper()
	err := tm.Cmd.Wait()
	tm.waited = true
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		tm.t.Fatal(err)
	}
	return How(tm.Cmd.ProcessState)
}

// Ended fails the test unless how is want, showing what the terminal
// showed.
func (tm *Term) Ended(how, want string) {
	tm.t.Helper()
	if how != want {
		tm.t.Errorf("ended with %s, want %s; the terminal showed:\n%s", how, want, strings.Join(tm.Seen, "\n"))
	}
}

// hangup reads a terminal's master, on which Linux reports that every
// process closed the terminal as EIO: that is the end of the output.
type hangup struct{ f *os.File }

func (h hangup) Read(b []byte) (int, error) {
	n, err := h.f.Read(b)
	if errors.Is(err, syscall.EIO) {
		err = io.EOF
	}
	return n, err
}

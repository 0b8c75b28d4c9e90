package proctest

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Shell is an interactive bash on a new pseudo-terminal, with job control,
// as a user runs one in a terminal window; the test types on it and waits
// for what the terminal shows. It is driven through python3's pexpect
// (shell.py): every wait is on the terminal's output, and Options.Limit
// (30 s if unset) only turns a hang into a failure that shows the screen.
// Every process it runs carries the test's tag.
type Shell struct {
	t      testing.TB
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	stderr Buffer
	waited bool
}

// ShellPrompt is the shell's prompt (PS1).
const ShellPrompt = "[mx-prompt]$ "

//go:embed shell.py
var shellDriver string

var pexpectPython struct {
	once sync.Once
	path string
	why  string
}

// python is a python3 that can import pexpect, or "" and why not.
func python() (string, string) {
	p := &pexpectPython
	p.once.Do(func() {
		var tried []string
		cands := []string{"python3", "/usr/bin/python3"}
		for _, c := range cands {
			path, err := exec.LookPath(c)
			if err != nil {
				continue
			}
			if err := exec.Command(path, "-c", "import pexpect").Run(); err != nil {
				tried = append(tried, path)
				continue
			}
			p.path = path
			return
		}
		p.why = fmt.Sprintf("no python3 with pexpect (tried %v): apt-get install python3-pexpect (.ci/run does)", tried)
	})
	return p.path, p.why
}

// StartShell starts an interactive bash (no startup files, prompt
// ShellPrompt) on a new pseudo-terminal, with env added to its
// environment, and waits for its first prompt. It skips t where python3
// with pexpect is missing, saying so.
func StartShell(t testing.TB, env []string, o Options) *Shell {
	t.Helper()
	py, why := python()
	if py == "" {
		t.Skip(why)
	}
	if o.Tag == "" {
		o.Tag = Tag(t)
	}
	if o.Limit == 0 {
		o.Limit = 30 * time.Second
	}
	cmd := exec.Command(py, "-c", shellDriver)
	cmd.Env = append(append(os.Environ(), env...), Env(o.Tag), "GORACE=atexit_sleep_ms=0",
		"MX_SHELL_PROMPT="+ShellPrompt, fmt.Sprintf("MX_SHELL_LIMIT=%g", o.Limit.Seconds()))
	s := &Shell{t: t, cmd: cmd}
	cmd.Stderr = &s.stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.in, s.out = in, bufio.NewScanner(out)
	s.out.Buffer(nil, 1<<24)
	t.Cleanup(func() {
		if !s.waited {
			in.Close() // the driver closes bash (SIGHUP, then SIGKILL)
			cmd.Wait()
		}
	})
	s.Prompt()
	return s
}

type shellReply struct {
	OK     bool     `json:"ok"`
	Error  string   `json:"error"`
	Screen string   `json:"screen"`
	Groups []string `json:"groups"`
	Status int      `json:"status"`
}

func (s *Shell) do(req map[string]string) shellReply {
	s.t.Helper()
	b, _ := json.Marshal(req)
	if _, err := s.in.Write(append(b, '\n')); err != nil {
		s.t.Fatalf("shell driver: %v; stderr:\n%s", err, s.stderr.String())
	}
	if !s.out.Scan() {
		s.t.Fatalf("shell driver ended: %v; stderr:\n%s", s.out.Err(), s.stderr.String())
	}
	var r shellReply
	if err := json.Unmarshal(s.out.Bytes(), &r); err != nil {
		s.t.Fatalf("shell driver said %q: %v", s.out.Text(), err)
	}
	if !r.OK {
		s.t.Fatalf("%v: %s; the terminal showed:\n%s", req, r.Error, r.Screen)
	}
	return r
}

// Type types text on the terminal ("\x1a" is Ctrl-Z, "\x03" Ctrl-C).
func (s *Shell) Type(text string) {
	s.t.Helper()
	s.do(map[string]string{"op": "send", "text": text})
}

// Run types line and Enter.
func (s *Shell) Run(line string) {
	s.t.Helper()
	s.Type(line + "\r")
}

// Expect waits until the terminal shows a match of the Python regular
// expression re, and returns the match and its groups. What it shows is
// consumed up to the match's end.
func (s *Shell) Expect(re string) []string {
	s.t.Helper()
	return s.do(map[string]string{"op": "expect", "re": re}).Groups
}

// Line waits for a line of output that starts with prefix (not the echo of
// a command line that contains it) and returns the rest of that line. The
// line's end is left for the next wait.
func (s *Shell) Line(prefix string) string {
	s.t.Helper()
	return s.Expect(`\n` + regexp.QuoteMeta(prefix) + `([^\r\n]*)(?=\r?\n)`)[1]
}

// Prompt waits for the shell's prompt.
func (s *Shell) Prompt() {
	s.t.Helper()
	s.Expect(regexp.QuoteMeta(ShellPrompt))
}

// Fg types fg and waits for bash to show the job it continues. Bash
// shows it once readline has set the terminal back from its own modes
// (no echo, no CR to NL): a line typed before that would reach the job
// in those, and a reader waiting for its newline would never see it.
func (s *Shell) Fg() {
	s.t.Helper()
	s.Run("fg")
	s.Expect(`fg\r\n[^\r\n]+\r\n`)
}

// Stopped waits for the shell's report that job n stopped, in the words
// bash uses ("Stopped"; in POSIX mode "Stopped(SIGTTIN)", …). For the
// foreground job the prompt follows (see Prompt); a report of a background
// job (set -b) comes alone.
func (s *Shell) Stopped(n int, words string) {
	s.t.Helper()
	s.Expect(fmt.Sprintf(`\[%d\][+-] +%s +`, n, regexp.QuoteMeta(words)))
}

// Exit types exit, waits for bash to end and for the driver, and fails
// the test unless bash exited 0.
func (s *Shell) Exit() {
	s.t.Helper()
	s.Run("exit")
	r := s.do(map[string]string{"op": "eof"})
	s.in.Close()
	err := s.cmd.Wait()
	s.waited = true
	if err != nil {
		s.t.Errorf("shell driver: %v; stderr:\n%s", err, s.stderr.String())
	}
	if r.Status != 0 {
		s.t.Errorf("bash exited %d", r.Status)
	}
	if strings.Contains(r.Screen, "DATA RACE") {
		s.t.Errorf("data race; the terminal showed:\n%s", r.Screen)
	}
}

// Status types `echo "status $?"` and returns the status of the shell's
// last foreground command, then waits for the prompt.
func (s *Shell) Status() string {
	s.t.Helper()
	s.Run(`echo "status $?"`)
	st := s.Line("status ")
	s.Prompt()
	return st
}

// State is pid's state letter from /proc/PID/stat ("T" stopped, "S"
// sleeping, …), or "" if it cannot be read.
func State(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	return parseStat(pid, b).state
}

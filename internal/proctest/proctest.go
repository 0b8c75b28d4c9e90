// Package proctest is the test seam of multiexit: it tags the processes a
// test makes and proves, by scanning /proc, that none of them is left.
package proctest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TagVar is the environment variable that carries a test's tag. Every
// process of a test's tree inherits it, so a scan of /proc finds them all.
const TagVar = "MULTIEXIT_TEST_TAG"

var seq atomic.Int64

// Tag returns a new tag and registers a cleanup that fails t if any process
// carrying it is alive (or a zombie) when the test ends; those are killed,
// by PID, so that one failing test does not poison the next. It panics on
// a nil t: a tag must belong to a test.
func Tag(t testing.TB) string {
	if t == nil {
		panic("proctest.Tag: nil testing.TB")
	}
	tag := fmt.Sprintf("%d-%d-%s", os.Getpid(), seq.Add(1), strings.ReplaceAll(t.Name(), "/", "."))
	t.Cleanup(func() {
		left := Survivors(tag)
		for _, p := range left {
			if proc, err := os.FindProcess(p.PID); err == nil {
				proc.Kill()
			}
		}
		if len(left) > 0 {
			t.Errorf("processes left behind by the test (killed now): %v", left)
		}
	})
	return tag
}

// Env returns the environment entry that carries tag.
func Env(tag string) string { return TagVar + "=" + tag }

// Survivor is a process found by Survivors.
type Survivor struct {
	PID   int
	State string // from /proc/PID/stat: R, S, Z (zombie), …
	Cmd   string
}

func (p Survivor) String() string { return fmt.Sprintf("pid %d (%s, state %s)", p.PID, p.Cmd, p.State) }

// Survivors lists the processes, other than this one, whose environment
// carries tag. A zombie's environment cannot be read: a zombie of the tree
// is a child of a live tagged process (listed) or of init (which reaps it).
// A process that was listed but vanished before its environment was read
// may have left a successor born after the listing (a descendant that
// forks and exits): then /proc is listed again, up to ten times, so that
// such a chain is not missed. On systems without /proc it returns nil.
func Survivors(tag string) []Survivor {
	if runtime.GOOS != "linux" {
		return nil
	}
	var out []Survivor
	for range 10 {
		var vanished bool
		out, vanished = survivors(tag)
		if !vanished || len(out) > 0 {
			break
		}
	}
	return out
}

// survivors is one look of Survivors, and whether a listed process
// vanished before its environment was read.
func survivors(tag string) (out []Survivor, vanished bool) {
	want := []byte(TagVar + "=" + tag + "\x00")
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	self := os.Getpid()
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == self {
			continue
		}
		stat, err := os.ReadFile(d + "/stat")
		if err != nil {
			vanished = true
			continue
		}
		s := parseStat(pid, stat)
		env, err := os.ReadFile(d + "/environ")
		if err != nil {
			vanished = true
			continue
		}
		if len(env) == 0 {
			// An exiting process shows an empty environment: once
			// exited, its children (born after the listing) are
			// reparented.
			if b, err := os.ReadFile(d + "/stat"); err != nil || parseStat(pid, b).state == "Z" {
				vanished = true
			}
		}
		if bytes.HasPrefix(env, want) || bytes.Contains(env, append([]byte{0}, want...)) {
			out = append(out, Survivor{pid, s.state, s.cmd})
		}
	}
	return out, vanished
}

type statInfo struct {
	ppid       int
	state, cmd string
}

func parseStat(pid int, b []byte) statInfo {
	s := string(b)
	i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if i < 0 || j < i {
		return statInfo{}
	}
	f := strings.Fields(s[j+1:])
	if len(f) < 2 {
		return statInfo{}
	}
	ppid, _ := strconv.Atoi(f[1])
	return statInfo{ppid: ppid, state: f[0], cmd: s[i+1 : j]}
}

// Buffer is a bytes.Buffer safe for the goroutines of os/exec to write to
// while a test reads it: use it as a command's Stderr.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

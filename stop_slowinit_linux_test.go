package multiexit_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/multiexit/multiexit/internal/proctest"
)

// slowInitMain is a pool whose supervised worker A exits 1 once it
// acknowledged, and whose restarted process (incarnation 1) blocks in a
// package initialised before multiexit's (aaa.example/slowpool/aaa sorts
// first) until the FIFO $SLOWINIT_FIFO is opened for writing: it has not
// caught its signals yet. Worker B serves.
const slowInitMain = `package main

import (
	"context"
	"fmt"
	"os"
	"time"

	_ "aaa.example/slowpool/aaa"

	"github.com/multiexit/multiexit"
)

func main() {
	if multiexit.IsChild() {
		role := os.Args[1]
		multiexit.Register(func(context.Context) error {
			fmt.Printf("%s%d hook\n", role, multiexit.Incarnation())
			return nil
		})
		if err := multiexit.Install(); err != nil {
			fmt.Println("install:", err)
			os.Exit(3)
		}
		fmt.Printf("ready %s%d\n", role, multiexit.Incarnation())
		if role == "A" && multiexit.Incarnation() == 0 {
			os.Exit(1)
		}
		select {}
	}
	multiexit.Register(func(context.Context) error { fmt.Println("H1"); return nil })
	if err := multiexit.Install(multiexit.WithGrace(20 * time.Second)); err != nil {
		fmt.Println("install:", err)
		os.Exit(3)
	}
	if _, err := multiexit.Start(multiexit.Supervise(multiexit.Command("A"), multiexit.Policy{}), multiexit.Command("B")); err != nil {
		fmt.Println("start:", err)
		os.Exit(3)
	}
	fmt.Println("ready main")
	select {}
}
`

const slowInitAAA = `package aaa

import (
	"fmt"
	"os"
	"syscall"
)

func init() {
	if fifo := os.Getenv("SLOWINIT_FIFO"); fifo != "" && os.Getenv("MULTIEXIT_INCARNATION") == "1" {
		// A reader before "A1 waiting" (a non-blocking open does not wait
		// for a writer), so that the test's non-blocking open for writing
		// fails (ENXIO) only once this process is gone; then a blocking
		// open, which returns once the test opens the FIFO for writing.
		held, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			fmt.Println("A1 fifo:", err)
			os.Exit(3)
		}
		fmt.Println("A1 waiting")
		if f, err := os.Open(fifo); err == nil {
			f.Close()
		}
		held.Close()
	}
}
`

// A child still starting delays no other child's stop: at SIGTERM, while
// a restarted worker is still in its package initialisation (it has not
// caught its signals: a SIGTERM would kill it without its hooks, so its
// stop waits), its healthy sibling is stopped at once and runs its hooks.
// The slow one is then still waiting (the FIFO it opens still has its
// reader: ENXIO if it had been killed first, as it was when the stop
// signalled no child before every one had caught its signals).
func TestSlowStartingChildDelaysNoSiblingsStop(t *testing.T) {
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"go.mod":     "module aaa.example/slowpool\n\ngo 1.26\n\nrequire github.com/multiexit/multiexit v0.0.0\n\nreplace github.com/multiexit/multiexit => " + root + "\n",
		"go.sum":     string(sum),
		"main.go":    slowInitMain,
		"aaa/aaa.go": slowInitAAA,
	}
	for name, text := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "slowpool")
	build := exec.Command("go", "build", "-mod=mod", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the pool: %v\n%s", err, out)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "SLOWINIT_FIFO="+fifo)
	p := &proc{Proc: proctest.Start(t, cmd, proctest.Options{}), t: t}
	p.WaitAll("ready main", "A1 waiting")
	p.Signal(syscall.SIGTERM)
	p.WaitFor("B0 hook")
	w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Errorf("the slow worker was gone before its sibling's hooks ran: %v", err)
	} else {
		w.Close()
	}
	trace, how := p.end()
	if how != diedOf(syscall.SIGTERM) || !slices.Contains(trace, "H1") {
		t.Errorf("ended with %s, trace %q; stderr:\n%s", how, strings.Join(trace, "|"), p.Stderr.String())
	}
}

// Command tidy shows that a process tree leaves nothing behind, not even a
// TCP port, however its parent ends.
//
// The tree: a parent starts a server (this binary, re-executed by
// multiexit.Command), which binds a port on 127.0.0.1 and hands the
// listening socket to a child of its own, the handler, which serves HTTP on
// it. A handler that outlived the tree would keep the port, and the next
// run could not bind it.
//
//	go run ./examples/tidy    # exit 0 when the demonstration succeeds
//
// Run with no arguments, tidy runs such a tree twice on one port: the first
// parent fails (its main returns an error: exit 1), the second is stopped by
// SIGTERM (it dies by it). After each, tidy binds the port itself to prove it is
// free, and exits 0; 1 if the port was still taken. The flag -role runs one
// process of the tree: "parent", "server" or "handler".
//
// It hands the socket to the handler with exec.Cmd.ExtraFiles, which
// Windows does not have: the demonstration runs on Unix.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"

	"github.com/multiexit/multiexit"
)

var (
	role = flag.String("role", "", `the process to run: "" (the demonstration), "parent", "server" or "handler"`)
	addr = flag.String("addr", "", "the address to serve on")
	end  = flag.String("end", "signal", `how the parent ends: "error" or "signal"`)
)

func main() {
	flag.Parse()
	switch *role {
	case "":
		multiexit.Run(demo)
	case "parent":
		multiexit.Run(parent)
	case "server":
		// Bind before Run: the parent's Start returns once this process
		// called Run, so the port is bound by then.
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		multiexit.Run(func(ctx context.Context) error { return server(ctx, ln) })
	case "handler":
		multiexit.Run(handler)
	}
}

// demo runs the tree twice on one port and checks the port after each run.
func demo(ctx context.Context) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a free port, for both runs
	if err != nil {
		return err
	}
	port := ln.Addr().String()
	ln.Close()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	for i, end := range []string{"error", "signal"} {
		say("run %d: the parent will end by %s", i+1, end)
		cmd := exec.Command(exe, "-role=parent", "-addr="+port, "-end="+end)
		// The tree's standard output: it ends when every process of the
		// tree has exited.
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		cmd.Stdout, cmd.Stderr = w, os.Stderr
		kids, err := multiexit.Start(cmd) // an external child, in its own process group
		w.Close()
		if err != nil {
			r.Close()
			return err
		}
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			say("  | %s", sc.Text())
			if sc.Text() == "parent: ready" {
				go kids[0].Stop() // SIGTERM
			}
		}
		r.Close()
		say("run %d: the parent exited (%v) and so did its tree", i+1, kids[0].Wait())
		ln, err := net.Listen("tcp", port)
		if err != nil {
			return fmt.Errorf("run %d left the port taken: %w", i+1, err)
		}
		ln.Close()
		say("run %d: %s is free again", i+1, port)
	}
	say("tidy: both runs left nothing behind")
	return nil
}

func parent(ctx context.Context) error {
	if _, err := multiexit.Start(multiexit.Command("-role=server", "-addr="+*addr)); err != nil {
		return err
	}
	// The port is bound: this request waits in its backlog until the
	// handler serves it.
	resp, err := http.Get("http://" + *addr + "/")
	if err != nil {
		return err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	say("parent (pid %d): GET / says %q", os.Getpid(), b)
	if *end == "error" {
		return errors.New("parent: a simulated failure")
	}
	say("parent: ready")
	<-ctx.Done() // the SIGTERM
	return nil
}

func server(ctx context.Context, ln net.Listener) error {
	f, err := ln.(*net.TCPListener).File()
	ln.Close()
	if err != nil {
		return err
	}
	cmd := multiexit.Command("-role=handler")
	cmd.ExtraFiles = []*os.File{f} // descriptor 3 in the handler
	kids, err := multiexit.Start(cmd)
	f.Close() // now only the handler has the socket
	if err != nil {
		return err
	}
	say("server (pid %d): bound %s, handed it to the handler (pid %d)", os.Getpid(), *addr, kids[0].PID())
	<-ctx.Done()
	return nil
}

func handler(ctx context.Context) error {
	f := os.NewFile(3, "listener")
	ln, err := net.FileListener(f) // a copy of the descriptor
	f.Close()
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from the handler, pid %d", os.Getpid())
	})}
	multiexit.Register(func(ctx context.Context) error {
		err := srv.Shutdown(ctx)
		say("handler (pid %d): closed the port", os.Getpid())
		return err
	})
	go srv.Serve(ln)
	<-ctx.Done()
	return nil
}

// say prints one line in a single write: the processes share standard output.
func say(format string, args ...any) {
	os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n")
}

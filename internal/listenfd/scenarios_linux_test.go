package listenfd_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"

	"github.com/multiexit/multiexit/internal/listenfd"
	"github.com/multiexit/multiexit/listen"
)

func init() {
	for name, f := range map[string]func([]string){
		"goServe":         goServe,
		"oracle":          oracle,
		"exitAtOnce":      exitAtOnce,
		"adopter":         adopter,
		"parse":           parse,
		"receiveAndSpawn": receiveAndSpawn,
		"fdcheck":         fdcheck,
		"normal":          normal,
	} {
		scenarios[name] = f
	}
}

// fdKinds says what descriptors from..to are: "socket" (with ",cloexec"
// if close-on-exec), "pipe", "closed", or "other".
func fdKinds(from, to int) string {
	var out []string
	for fd := from; fd <= to; fd++ {
		var st unix.Stat_t
		kind := "other"
		switch {
		case unix.Fstat(fd, &st) != nil:
			kind = "closed"
		case st.Mode&unix.S_IFMT == unix.S_IFSOCK:
			kind = "socket"
		case st.Mode&unix.S_IFMT == unix.S_IFIFO:
			kind = "pipe"
		}
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && fl&unix.FD_CLOEXEC != 0 {
			kind += ",cloexec"
		}
		out = append(out, fmt.Sprintf("fd%d=%s", fd, kind))
	}
	return strings.Join(out, " ")
}

// goServe is a Go worker: Receive (as Install does), a net.Listener for
// each name in args from the sub-package listen, then one connection
// served on each, in order. "-extra=N" first writes "extra" into
// descriptor N (an ExtraFiles entry of the parent's).
func goServe(args []string) {
	if err := listenfd.Receive(); err != nil {
		fail("Receive: %v", err)
	}
	if len(args) > 0 && strings.HasPrefix(args[0], "-extra=") {
		fd, _ := strconv.Atoi(strings.TrimPrefix(args[0], "-extra="))
		f := os.NewFile(uintptr(fd), "extra")
		f.WriteString("extra\n")
		f.Close()
		args = args[1:]
	}
	var lns []net.Listener
	for _, name := range args {
		l, err := listen.Listener(name)
		if err != nil {
			fail("%v", err)
		}
		lns = append(lns, l)
	}
	names, _ := listen.Names()
	n, _ := strconv.Atoi(os.Getenv(listenfd.EnvFDs))
	say("ready pid=%d LISTEN_PID=%s names=%s marker=%q %s", os.Getpid(), os.Getenv(listenfd.EnvPID),
		strings.Join(names, ","), os.Getenv(listenfd.MarkerVar), fdKinds(3, 2+n))
	for i, l := range lns {
		c, err := l.Accept()
		if err != nil {
			fail("accept %s: %v", args[i], err)
		}
		fmt.Fprintf(c, "hello from %s pid %d\n", args[i], os.Getpid())
		c.Close()
		l.Close()
	}
}

// oracle finds its sockets with go-systemd's activation package, the
// reference, and serves one connection on each name of args, in order.
func oracle(args []string) {
	if err := listenfd.Receive(); err != nil {
		fail("Receive: %v", err)
	}
	pid := os.Getenv(listenfd.EnvPID)
	m, err := activation.ListenersWithNames()
	if err != nil {
		fail("go-systemd: %v", err)
	}
	var names []string
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	say("ready pid=%d LISTEN_PID=%s go-systemd=%s", os.Getpid(), pid, strings.Join(names, ","))
	for _, name := range args {
		if len(m[name]) != 1 {
			fail("go-systemd found %d listeners named %q", len(m[name]), name)
		}
		c, err := m[name][0].Accept()
		if err != nil {
			fail("accept %s: %v", name, err)
		}
		fmt.Fprintf(c, "oracle %s pid %d\n", name, os.Getpid())
		c.Close()
		m[name][0].Close()
	}
}

// exitAtOnce receives its sockets and exits without touching them.
func exitAtOnce(args []string) {
	if err := listenfd.Receive(); err != nil {
		fail("Receive: %v", err)
	}
	say("done")
}

// adopter is a parent that systemd started with sockets: it adopts the
// names of args, closes the rest, and hands the adopted ones to a Go
// worker (goServe), whose output it shares.
func adopter(args []string) {
	p, err := listenfd.Adopt()
	if err != nil {
		fail("Adopt: %v", err)
	}
	if p.Ignored != "" {
		fail("Adopt ignored the variables: %s", p.Ignored)
	}
	var socks []*listenfd.Socket
	for _, name := range args {
		s, err := p.Socket(name)
		if err != nil {
			fail("%v", err)
		}
		say("adopted %s %s %s", s.Name(), s.Network(), s.Addr())
		socks = append(socks, s)
	}
	p.Close()
	var left []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LISTEN_") {
			left = append(left, kv)
		}
	}
	say("environment after Adopt: %q; %s", left, fdKinds(3, 4))
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), scenarioVar+"=goServe")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	h, err := listenfd.Pass(cmd, socks, listenfd.GoWorker)
	if err != nil {
		fail("Pass: %v", err)
	}
	if err := h.Started(cmd.Start()); err != nil {
		fail("start: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		fail("worker: %v", err)
	}
}

// parse says what Parse and File make of the variables, for each name of
// args.
func parse(args []string) {
	p, err := listenfd.Parse()
	if err != nil {
		say("parse error: %v", err)
		return
	}
	say("parse: names=%s ignored=%q", strings.Join(p.Names(), ","), p.Ignored)
	for _, name := range args {
		f, err := p.File(name)
		if err != nil {
			say("file error: %v", err)
			continue
		}
		say("file %s: ok", name)
		f.Close()
	}
}

// receiveAndSpawn receives its sockets, then starts a program (fdcheck)
// with plain os/exec, as a worker's own code might: it must not inherit
// them.
func receiveAndSpawn(args []string) {
	if err := listenfd.Receive(); err != nil {
		fail("Receive: %v", err)
	}
	say("worker %s", fdKinds(3, 4))
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), scenarioVar+"=fdcheck")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fail("fdcheck: %v", err)
	}
}

// fdcheck says what descriptors 3 and 4 are, and what Parse makes of the
// inherited variables.
func fdcheck(args []string) {
	p, err := listenfd.Parse()
	if err != nil {
		fail("parse: %v", err)
	}
	say("grandchild %s ignored=%q", fdKinds(3, 4), p.Ignored)
}

// normal is a program that runs normally.
func normal(args []string) {
	say("ran normally %s=%q", listenfd.ShimVar, os.Getenv(listenfd.ShimVar))
}

package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/multiexit/multiexit/internal/sdnotify"
)

// notifyStopping tells systemd, when multiexit got SIGTERM or SIGINT, that
// the stop has begun (STOPPING=1) and may take d (EXTEND_TIMEOUT_USEC), so
// that systemd does not kill a stop still inside it. Without NOTIFY_SOCKET
// it does nothing.
func notifyStopping(d time.Duration) {
	sdnotify.Stopping(d, "multiexit: stopping COMMAND and its tree")
}

// relayNotify gives COMMAND a notify socket of its own when multiexit runs
// under systemd (NOTIFY_SOCKET is set): multiexit is the unit's main
// process, and systemd (NotifyAccess=main, the default) listens to it
// alone. It returns the address of the relay's socket, for COMMAND's
// NOTIFY_SOCKET (see sdnotify.RelayEnv), and relays what COMMAND's tree
// sends (READY=1, STATUS=, WATCHDOG=1, RELOADING=1, STOPPING=1, ERRNO=,
// EXTEND_TIMEOUT_USEC=, …) to systemd, from multiexit. MAINPID= is dropped (multiexit stays the main process),
// and so are the lines that pass descriptors (FDSTORE=, BARRIER=), which
// the relay does not carry. Without NOTIFY_SOCKET it does nothing and
// returns "".
//
// The socket is abstract, so any process of the network namespace can
// send to it: as systemd does with its own socket, the relay reads each
// datagram's sender from its credentials (SO_PASSCRED) and passes on only
// those from COMMAND's tree (see tree.has), whatever user it runs as
// (COMMAND may drop its privileges). The others are refused, with a log
// line. commandPID gives COMMAND's PID once it runs (0 before).
//
// The sockets are golang.org/x/sys/unix's, not package net's: net's code
// and initialisation cost every run of multiexit about a millisecond, and
// a relay of datagrams needs none of it.
func relayNotify(log *slog.Logger, commandPID func() int) (socket string, err error) {
	target := os.Getenv(sdnotify.Socket)
	if target == "" {
		return "", nil
	}
	// An abstract socket: nothing to remove, gone with the process.
	name := fmt.Sprintf("@multiexit-notify-%d-%x", os.Getpid(), time.Now().UnixNano())
	in, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", os.NewSyscallError("socket", err)
	}
	if err := unix.SetsockoptInt(in, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		unix.Close(in)
		return "", os.NewSyscallError("setsockopt SO_PASSCRED", err)
	}
	if err := unix.Bind(in, &unix.SockaddrUnix{Name: name}); err != nil {
		unix.Close(in)
		return "", os.NewSyscallError("bind "+name, err)
	}
	out, err := sdnotify.Open(target)
	if err != nil {
		unix.Close(in)
		return "", err
	}
	r := &relay{in: in, out: out, log: log, tree: &tree{self: os.Getpid(), command: commandPID}}
	go r.run()
	return name, nil
}

// relay passes the datagrams of COMMAND's tree on to systemd.
type relay struct {
	in   int
	out  *sdnotify.Sender
	log  *slog.Logger
	tree *tree
}

// run relays until the socket fails; it blocks an OS thread of its own.
func (r *relay) run() {
	buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	for {
		// Descriptors a datagram carries (BARRIER=1's) do not fit in oob:
		// the kernel closes them, as systemd-notify's barrier expects.
		n, oobn, _, _, err := unix.Recvmsg(r.in, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			r.log.Warn("multiexit: the notify relay stopped", "err", err)
			return
		}
		cred := sender(oob[:oobn])
		if !r.accepts(cred) {
			pid, uid := -1, -1
			if cred != nil {
				pid, uid = int(cred.Pid), int(cred.Uid)
			}
			r.log.Warn("multiexit: refused a notification from a process outside COMMAND's tree",
				"pid", pid, "uid", uid, "state", firstLine(buf[:n]))
			continue
		}
		msg := filterNotify(buf[:n])
		if len(msg) == 0 {
			continue
		}
		if err := r.out.Send(msg); err != nil {
			r.log.Warn("multiexit: cannot relay a notification to systemd", "socket", r.out.Addr(), "err", err)
			continue
		}
		r.log.Info("multiexit: relayed COMMAND's notification to systemd", "pid", cred.Pid, "state", string(msg))
	}
}

// accepts reports whether a datagram with the credentials cred comes from
// COMMAND's tree (see tree.has). A sender already gone (exited and reaped
// before the relay read its datagram: a one-shot sender such as
// systemd-notify) cannot be placed; it is trusted if it ran as
// multiexit's own user, who can act as COMMAND anyway (send from inside
// its tree, trace it), and refused otherwise.
func (r *relay) accepts(cred *unix.Ucred) bool {
	if cred == nil {
		return false
	}
	member, gone := r.tree.has(int(cred.Pid))
	return member || gone && int(cred.Uid) == os.Getuid()
}

// sender is the credentials a datagram came with, or nil.
func sender(oob []byte) *unix.Ucred {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	for i := range msgs {
		if msgs[i].Header.Level == unix.SOL_SOCKET && msgs[i].Header.Type == unix.SCM_CREDENTIALS {
			if cred, err := unix.ParseUnixCredentials(&msgs[i]); err == nil {
				return cred
			}
		}
	}
	return nil
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	if len(line) > 80 {
		line = line[:80]
	}
	return string(line)
}

// tree tells the processes of COMMAND's tree.
type tree struct {
	self    int        // multiexit
	command func() int // COMMAND's PID, 0 before it runs
	once    sync.Once
	cgroup  string // COMMAND's cgroup v2 path, if it has one of its own
}

// has reports whether pid is a process of COMMAND's tree: a descendant of
// multiexit (COMMAND, its descendants, and the orphans of the tree that
// multiexit adopted as subreaper or init), or a process of COMMAND's own
// cgroup or one below it (the cgroup layer); or that pid is gone, so that
// neither can be told. The PID is looked up in /proc when the datagram is
// read: one reused in between is taken for its new process.
func (t *tree) has(pid int) (member, gone bool) {
	if pid <= 0 || pid == t.self {
		return false, false
	}
	for p, depth := pid, 0; depth < 1024; depth++ {
		pp := ppidOf(p)
		if pp == t.self {
			return true, false
		}
		if pp == 0 && p == pid {
			return false, true
		}
		if pp <= 1 {
			break
		}
		p = pp
	}
	command := t.command()
	if command == 0 {
		return false, false
	}
	t.once.Do(func() {
		if cg := cgroupOf(command); cg != "" && cg != cgroupOf(t.self) {
			t.cgroup = cg
		}
	})
	if t.cgroup == "" {
		return false, false
	}
	cg := cgroupOf(pid)
	return cg == t.cgroup || strings.HasPrefix(cg, t.cgroup+"/"), false
}

// ppidOf is pid's parent, from /proc/PID/stat, or 0.
func ppidOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// cgroupOf is pid's cgroup v2 path ("0::" in /proc/PID/cgroup), or "".
func cgroupOf(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p
		}
	}
	return ""
}

// filterNotify keeps the lines of a notification that multiexit can pass
// on as its own.
func filterNotify(msg []byte) []byte {
	var keep [][]byte
	for _, line := range bytes.Split(msg, []byte("\n")) {
		switch {
		case len(line) == 0,
			bytes.HasPrefix(line, []byte("MAINPID=")),
			bytes.HasPrefix(line, []byte("FDSTORE")),
			bytes.HasPrefix(line, []byte("FDNAME=")),
			bytes.HasPrefix(line, []byte("FDPOLL=")),
			bytes.HasPrefix(line, []byte("BARRIER=")):
			continue
		}
		keep = append(keep, line)
	}
	return bytes.Join(keep, []byte("\n"))
}

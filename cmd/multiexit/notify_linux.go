package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// notifyStopping tells systemd, when multiexit got SIGTERM or SIGINT, that
// the stop has begun (STOPPING=1) and may take d (EXTEND_TIMEOUT_USEC), so
// that systemd does not kill a stop still inside it. Without NOTIFY_SOCKET
// it does nothing.
func notifyStopping(d time.Duration) {
	target := os.Getenv("NOTIFY_SOCKET")
	if target == "" {
		return
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if target[0] == '@' {
		target = "\x00" + target[1:]
	}
	msg := fmt.Sprintf("STOPPING=1\nEXTEND_TIMEOUT_USEC=%d\nSTATUS=multiexit: stopping COMMAND and its tree", d.Microseconds())
	unix.Sendto(fd, []byte(msg), 0, &unix.SockaddrUnix{Name: target})
}

// relayNotify gives COMMAND a notify socket of its own when multiexit runs
// under systemd (NOTIFY_SOCKET is set): multiexit is the unit's main
// process, and systemd (NotifyAccess=main, the default) listens to it
// alone. It returns the NOTIFY_SOCKET entry for COMMAND's environment and
// relays what COMMAND sends (READY=1, STATUS=, RELOADING=1, STOPPING=1,
// ERRNO=, EXTEND_TIMEOUT_USEC=, …) to systemd, from multiexit. MAINPID= is
// dropped (multiexit stays the main process), and so are the lines that
// pass descriptors (FDSTORE=, BARRIER=), which the relay does not carry.
// Without NOTIFY_SOCKET it does nothing and returns "".
//
// The sockets are golang.org/x/sys/unix's, not package net's: net's code
// and initialisation cost every run of multiexit about a millisecond, and
// a relay of datagrams needs none of it.
func relayNotify(log *slog.Logger) (env string, err error) {
	target := os.Getenv("NOTIFY_SOCKET")
	if target == "" {
		return "", nil
	}
	// An abstract socket: nothing to remove, gone with the process.
	name := fmt.Sprintf("@multiexit-notify-%d-%x", os.Getpid(), time.Now().UnixNano())
	in, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(in, &unix.SockaddrUnix{Name: name}); err != nil {
		unix.Close(in)
		return "", os.NewSyscallError("bind "+name, err)
	}
	out, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		unix.Close(in)
		return "", os.NewSyscallError("socket", err)
	}
	go relay(in, out, &unix.SockaddrUnix{Name: target}, log)
	return "NOTIFY_SOCKET=" + name, nil
}

// relay passes each datagram on; it blocks an OS thread of its own.
func relay(in, out int, to *unix.SockaddrUnix, log *slog.Logger) {
	buf := make([]byte, 64<<10)
	for {
		n, _, err := unix.Recvfrom(in, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			log.Warn("multiexit: the notify relay stopped", "err", err)
			return
		}
		msg := filterNotify(buf[:n])
		if len(msg) == 0 {
			continue
		}
		if err := unix.Sendto(out, msg, 0, to); err != nil {
			log.Warn("multiexit: cannot relay a notification to systemd", "socket", to.Name, "err", err)
			continue
		}
		log.Info("multiexit: relayed COMMAND's notification to systemd", "state", string(msg))
	}
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

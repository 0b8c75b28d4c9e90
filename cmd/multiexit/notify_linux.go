package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"os"
	"strconv"
)

// relayNotify gives COMMAND a notify socket of its own when multiexit runs
// under systemd (NOTIFY_SOCKET is set): multiexit is the unit's main
// process, and systemd (NotifyAccess=main, the default) listens to it
// alone. It returns the NOTIFY_SOCKET entry for COMMAND's environment and
// relays what COMMAND sends (READY=1, STATUS=, RELOADING=1, STOPPING=1,
// ERRNO=, EXTEND_TIMEOUT_USEC=, …) to systemd, from multiexit. MAINPID= is
// dropped (multiexit stays the main process), and so are the lines that
// pass descriptors (FDSTORE=, BARRIER=), which the relay does not carry.
// Without NOTIFY_SOCKET it does nothing and returns "".
func relayNotify(log *slog.Logger) (env string, err error) {
	target := os.Getenv("NOTIFY_SOCKET")
	if target == "" {
		return "", nil
	}
	var nonce [8]byte
	rand.Read(nonce[:])
	// An abstract socket: nothing to remove, gone with the process.
	name := "@multiexit-notify-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(nonce[:])
	in, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return "", err
	}
	out, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: target, Net: "unixgram"})
	if err != nil {
		in.Close()
		return "", err
	}
	go relay(in, out, log)
	return "NOTIFY_SOCKET=" + name, nil
}

func relay(in, out *net.UnixConn, log *slog.Logger) {
	buf := make([]byte, 64<<10)
	for {
		n, err := in.Read(buf)
		if err != nil {
			return
		}
		msg := filterNotify(buf[:n])
		if len(msg) == 0 {
			continue
		}
		if _, err := out.Write(msg); err != nil {
			log.Warn("multiexit: cannot relay a notification to systemd", "err", err)
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

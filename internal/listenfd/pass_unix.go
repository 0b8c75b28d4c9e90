//go:build unix

package listenfd

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Pass prepares cmd, not yet started, to receive socks in the systemd
// format:
//
//   - descriptors 3..3+n-1 are socks, in order, before the command's own
//     ExtraFiles: entry i of cmd.ExtraFiles, descriptor 3+i before, becomes
//     descriptor 3+n+i. (sd_listen_fds requires the sockets to start at 3.
//     multiexit's control pipes, which Start appends after ExtraFiles,
//     follow them: Pass must run before that.)
//   - LISTEN_FDS=n and LISTEN_FDNAMES=name1:name2:... in cmd.Env
//     (os.Environ() if it was nil), replacing any LISTEN_* already there;
//   - LISTEN_PID, the child's own PID, set in the child: by Receive for a
//     GoWorker (a private variable names this process as its parent), by
//     the exec shim for AnyProgram. For the shim, Pass sets cmd.Path to
//     this binary (/proc/self/exe; cmd.Args stays the command's, so argv[0]
//     too), and adds a status pipe after the ExtraFiles, which the shim
//     closes on exec.
//
// The caller starts cmd, then calls Started on the Handoff with Start's
// error (always: it closes the status pipe). Nothing may be inserted into
// cmd.ExtraFiles before the entries Pass put there; appending is fine.
// Pass changes nothing of socks: the parent's descriptors keep their flags
// (see the package doc for what a Go child does to the shared description).
// With no socks it changes nothing and returns a nil Handoff, whose
// Started is valid. A name passed twice, a closed Socket, or an
// AnyProgram on another system than Linux is an error that names it.
//
// Unix only; Windows returns an error.
func Pass(cmd *exec.Cmd, socks []*Socket, recv Receiver) (*Handoff, error) {
	if len(socks) == 0 {
		return nil, nil
	}
	if cmd.Process != nil {
		return nil, fmt.Errorf("listeners: %s: already started", cmd.Path)
	}
	files := make([]*os.File, len(socks))
	names := make([]string, len(socks))
	for i, s := range socks {
		for _, prev := range socks[:i] {
			if prev.name == s.name {
				return nil, fmt.Errorf("listeners: %v: the name is passed twice (as descriptors %d and %d)", s, StartFD+indexOf(socks, prev), StartFD+i)
			}
		}
		// Fd never changes the mode of a file from os.NewFile (it does
		// only for files that os or net put into non-blocking mode).
		if s.f.Fd() == ^uintptr(0) {
			return nil, fmt.Errorf("listeners: %v is closed", s)
		}
		files[i], names[i] = s.f, s.name
	}
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	env = withoutVars(env, EnvFDs, EnvPID, EnvNames, markerVar, shimVar)
	env = append(env, EnvFDs+"="+strconv.Itoa(len(socks)), EnvNames+"="+strings.Join(names, ":"))
	h := &Handoff{}
	switch recv {
	case GoWorker:
		env = append(env, markerVar+"="+strconv.Itoa(os.Getpid()))
	case AnyProgram:
		var err error
		if h, err = viaShim(cmd, len(socks), &env); err != nil {
			return nil, fmt.Errorf("listeners: %s: exec shim: %w", cmd.Path, err)
		}
	default:
		return nil, fmt.Errorf("listeners: unknown Receiver %d", recv)
	}
	cmd.Env = env
	cmd.ExtraFiles = append(files, cmd.ExtraFiles...)
	if h.w != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, h.w)
	}
	return h, nil
}

func indexOf(socks []*Socket, s *Socket) int {
	for i, x := range socks {
		if x == s {
			return i
		}
	}
	return -1
}

// withoutVars returns env without the variables named.
func withoutVars(env []string, names ...string) []string {
	out := make([]string, 0, len(env)+len(names)+1)
	for _, kv := range env {
		drop := false
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				drop = true
				break
			}
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

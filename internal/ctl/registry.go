// Package ctl is the channel between a parent and a worker it started
// (multiexit.Command and Start): the registry the worker inherits in its
// environment (Registry, Encode, Decode), and the control channel, a pipe
// each way: the parent's end (Parent: the worker's deadline and budget as
// lines, the acknowledgements read back) and the worker's end (Worker: the
// parent's lines, and its end, which means the parent died or, on
// Windows, stops the worker).
//
// It knows nothing of the shutdown: what a worker hears is read back with
// Worker.Left, and what it must do when the parent ends is a function the
// caller passes. It has no init.
//
// Platforms: on Linux the kernel turns the end of the worker's channel into
// SIGTERM (no goroutine waits for it); elsewhere a goroutine reads it. On
// Windows the ends are inherited handles, and the job object's handle is
// passed with them.
package ctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// EnvVar is the environment variable that carries the registry from a
// parent to the workers it starts (package multiexit's EnvVar).
const EnvVar = "MULTIEXIT"

const (
	// Version is the registry's format version, its first field.
	Version = "1"
	// MaxRegistry bounds the encoded registry (and what a worker
	// accepts), well below Linux's 128 KiB limit on one environment
	// string (package multiexit's MaxRegistry).
	MaxRegistry = 64 << 10
	// Pending marks a Command that Start has not encoded yet.
	Pending = "pending"
)

// Registry is what MULTIEXIT carries:
//
//	1:<parent pid>:<control ids>:<hooks as JSON>
//
// for example 1:4242:3,4:[{"n":"cleanup","a":"/tmp/x"}]. The control ids
// are the worker's ends of the control channel (descriptor numbers on Unix,
// handle values on Windows): first the one it reads (EOF means the parent
// died), then the one it writes its acknowledgement to. The hooks are listed
// in the order the parent registered them.
type Registry struct {
	PPID  int
	IDs   [2]uintptr
	Hooks []Hook
}

// Hook is a shared hook as the registry carries it: its name and its
// argument as JSON.
type Hook struct {
	N string          `json:"n"`
	A json.RawMessage `json:"a"`
}

// Encode encodes the registry for a worker of ppid whose control ends are
// ids, with hooksJSON, the hooks as a JSON list ([]Hook). A result longer
// than MaxRegistry is an error.
func Encode(ppid int, ids [2]uintptr, hooksJSON string) (string, error) {
	s := Version + ":" + strconv.Itoa(ppid) + ":" +
		strconv.FormatUint(uint64(ids[0]), 10) + "," + strconv.FormatUint(uint64(ids[1]), 10) + ":" + hooksJSON
	if len(s) > MaxRegistry {
		return "", fmt.Errorf("multiexit: %s registry is %d bytes, more than the %d allowed: shared hook arguments too large", EnvVar, len(s), MaxRegistry)
	}
	return s, nil
}

// Decode parses MULTIEXIT. Its errors name the byte offset.
func Decode(s string) (*Registry, error) {
	bad := func(off int, format string, args ...any) error {
		return fmt.Errorf("multiexit: %s: byte %d: %s", EnvVar, off, fmt.Sprintf(format, args...))
	}
	if len(s) > MaxRegistry {
		return nil, bad(MaxRegistry, "registry is %d bytes, more than the %d allowed", len(s), MaxRegistry)
	}
	if s == Pending {
		return nil, bad(0, "worker was started with exec.Cmd.Start, not multiexit.Start")
	}
	fields := strings.SplitN(s, ":", 4)
	if fields[0] != Version {
		if len(fields) == 1 || len(fields[0]) > 8 {
			return nil, bad(0, "not a multiexit registry (want %q followed by ':')", Version)
		}
		return nil, bad(0, "unknown format version %q (this binary reads version %s)", fields[0], Version)
	}
	if len(fields) < 4 {
		return nil, bad(len(s), "truncated: want 4 fields separated by ':', found %d", len(fields))
	}
	r := &Registry{}
	off := len(fields[0]) + 1
	pid, err := strconv.Atoi(fields[1])
	if err != nil || pid <= 0 {
		return nil, bad(off, "parent PID %q is not a positive number", fields[1])
	}
	r.PPID = pid
	off += len(fields[1]) + 1
	ids := strings.Split(fields[2], ",")
	if len(ids) != 2 {
		return nil, bad(off, "control ids %q: want two numbers separated by ','", fields[2])
	}
	for i, id := range ids {
		v, err := strconv.ParseUint(id, 10, 63)
		switch {
		case err != nil:
			return nil, bad(off, "control id %q is not a number", id)
		case v < 3:
			return nil, bad(off, "control id %d is a standard descriptor (standard input, output or error)", v)
		case i == 1 && uintptr(v) == r.IDs[0]:
			return nil, bad(off, "control id %d is given twice", v)
		}
		r.IDs[i] = uintptr(v)
		off += len(id) + 1
	}
	if fields[3] == "[]" {
		// No shared hooks, the usual case: encoding/json's first use in
		// a process costs more than the rest of a worker's Install.
		r.Hooks = []Hook{}
		return r, nil
	}
	dec := json.NewDecoder(strings.NewReader(fields[3]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r.Hooks); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, bad(off+int(se.Offset)-1, "hooks: %v", err) // the offending byte
		case errors.As(err, &te):
			return nil, bad(off+int(te.Offset)-1, "hooks: %v", err) // the value's last byte
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil, bad(len(s), "hooks: truncated JSON")
		}
		return nil, bad(off, "hooks: %v", err)
	}
	if rest := dec.InputOffset(); int(rest) != len(fields[3]) && len(bytes.TrimSpace([]byte(fields[3][rest:]))) > 0 {
		return nil, bad(off+int(rest), "trailing data after the hooks")
	}
	if r.Hooks == nil {
		return nil, bad(off, "hooks: want a JSON list, found null")
	}
	for i, h := range r.Hooks {
		if h.N == "" {
			return nil, bad(off, "hook %d: empty name", i)
		}
		if len(h.A) == 0 {
			return nil, bad(off, "hook %d (%q): no argument", i, h.N)
		}
	}
	return r, nil
}

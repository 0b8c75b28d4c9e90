package multiexit

// Other processes, as /proc shows them.

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// statFields are the fields of /proc/PID/stat after the command name (the
// state first), or nil if it cannot be read.
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// procState is pid's state letter ('Z' for a zombie); false if pid's stat
// cannot be read.
func procState(pid int) (byte, bool) {
	f := statFields(pid)
	if len(f) < 1 || len(f[0]) != 1 {
		return 0, false
	}
	return f[0][0], true
}

// ppidOf is pid's parent (0 if it cannot be read).
func ppidOf(pid int) int {
	f := statFields(pid)
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// startTime is field 22 of /proc/PID/stat: with the PID, it names one
// process for good ("" if it cannot be read).
func startTime(pid int) string {
	f := statFields(pid)
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// envOf is the value of name in pid's environment as it was when pid
// executed its program ("" if unset or unreadable).
func envOf(pid int, name string) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return ""
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(name+"=")); ok {
			return string(v)
		}
	}
	return ""
}

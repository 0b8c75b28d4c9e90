//go:build unix

package ctl

// The control channel on Unix: a pipe each way, passed as extra
// descriptors, and the monotonic clock its time limits are written in.

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pass hands the worker its ends of the control channel as extra
// descriptors, after any the caller set. job is Windows's.
func pass(cmd *exec.Cmd, ends [2]*os.File, _ uintptr) [2]uintptr {
	base := 3 + len(cmd.ExtraFiles)
	cmd.ExtraFiles = append(cmd.ExtraFiles, ends[0], ends[1])
	return [2]uintptr{uintptr(base), uintptr(base + 1)}
}

// Check verifies that ids name open pipes, as Open passes.
func Check(ids [2]uintptr) error {
	for _, id := range ids {
		var st syscall.Stat_t
		if err := syscall.Fstat(int(id), &st); err != nil {
			return fmt.Errorf("descriptor %d: %w", id, err)
		}
		if st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
			return fmt.Errorf("descriptor %d is not a pipe", id)
		}
	}
	return nil
}

// CloseOnExec keeps the worker's ends of the control channel, ids, from the
// programs it runs.
func CloseOnExec(ids [2]uintptr) {
	syscall.CloseOnExec(int(ids[0]))
	syscall.CloseOnExec(int(ids[1]))
}

// Inheritable undoes CloseOnExec.
func Inheritable(ids [2]uintptr) {
	for _, id := range ids {
		syscall.Syscall(syscall.SYS_FCNTL, id, syscall.F_SETFD, 0)
	}
}

// writeByte writes b to the descriptor id.
func writeByte(id uintptr, b byte) { syscall.Write(int(id), []byte{b}) }

// readNonblock reads from a non-blocking descriptor: n > 0 bytes read, 0
// with a nil error at end of file, anything else nothing to read now.
func readNonblock(fd int, buf []byte) (int, error) { return syscall.Read(fd, buf) }

// openAck opens only the end a worker acknowledges on, close-on-exec like
// both (see openControl), when the kernel watches the other.
func openAck(ids [2]uintptr) *os.File {
	syscall.CloseOnExec(int(ids[0]))
	syscall.CloseOnExec(int(ids[1]))
	return os.NewFile(ids[1], "multiexit-ack")
}

// openControl opens a worker's ends, close-on-exec so that the worker's own
// children do not hold them.
func openControl(ids [2]uintptr) (death, ack *os.File) {
	syscall.CloseOnExec(int(ids[0]))
	syscall.CloseOnExec(int(ids[1]))
	syscall.SetNonblock(int(ids[0]), true)
	return os.NewFile(ids[0], "multiexit-parent"), os.NewFile(ids[1], "multiexit-ack")
}

// monotonicAt is t on CLOCK_MONOTONIC, which every process of the machine
// shares: how a parent tells a worker until when it has (a worker that
// reads it late does not overrun).
func monotonicAt(t time.Time) time.Duration { return monotonicNow() + time.Until(t) }

func monotonicNow() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

// Stop does nothing here: a worker is stopped by SIGTERM, not through the
// channel.
func (p *Parent) Stop() {}

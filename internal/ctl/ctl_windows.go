package ctl

// The control channel on Windows: a pipe each way, passed as inherited
// handles, and the clock its time limits are written in.

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/windows"
)

// pass lets the worker inherit its ends of the control channel (and
// job, the job's handle if not 0: see contain.Job); the registry carries
// the ends' handle values.
// ExtraFiles does not exist on Windows: os/exec passes exactly the handles
// listed in AdditionalInheritedHandles, which must be inheritable, as
// os.Pipe's are.
func pass(cmd *exec.Cmd, ends [2]*os.File, job uintptr) [2]uintptr {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	a := cmd.SysProcAttr
	a.AdditionalInheritedHandles = append(a.AdditionalInheritedHandles,
		syscall.Handle(ends[0].Fd()), syscall.Handle(ends[1].Fd()))
	if job != 0 {
		a.AdditionalInheritedHandles = append(a.AdditionalInheritedHandles, syscall.Handle(job))
	}
	return [2]uintptr{ends[0].Fd(), ends[1].Fd()}
}

// Check verifies that ids name pipe handles, as Open passes.
func Check(ids [2]uintptr) error {
	for _, id := range ids {
		t, err := windows.GetFileType(windows.Handle(id))
		if err != nil {
			return fmt.Errorf("handle %d: %w", id, err)
		}
		if t != windows.FILE_TYPE_PIPE {
			return fmt.Errorf("handle %d is not a pipe", id)
		}
	}
	return nil
}

// CloseOnExec keeps the worker's ends of the control channel, ids, from the
// programs it runs.
func CloseOnExec(ids [2]uintptr) {
	for _, id := range ids {
		windows.SetHandleInformation(windows.Handle(id), windows.HANDLE_FLAG_INHERIT, 0)
	}
}

// Inheritable undoes CloseOnExec.
func Inheritable(ids [2]uintptr) {
	for _, id := range ids {
		windows.SetHandleInformation(windows.Handle(id), windows.HANDLE_FLAG_INHERIT, windows.HANDLE_FLAG_INHERIT)
	}
}

// writeByte writes b to the handle id.
func writeByte(id uintptr, b byte) {
	var n uint32
	windows.WriteFile(windows.Handle(id), []byte{b}, &n, nil)
}

// monotonicAt is t as the machine's clock: how a parent tells a worker
// until when it has.
func monotonicAt(t time.Time) time.Duration { return time.Duration(t.UnixNano()) }

func monotonicNow() time.Duration { return time.Duration(time.Now().UnixNano()) }

// readNonblock is never called here: the kernel watches no end on Windows.
func readNonblock(int, []byte) (int, error) { return -1, syscall.EINVAL }

// openAck opens only the end a worker acknowledges on (see openControl);
// Windows never needs it (signalOnHangup is Linux's).
func openAck(ids [2]uintptr) *os.File {
	_, ack := openControl(ids)
	return ack
}

// openControl opens a worker's ends, no longer inheritable, so that no
// program the worker starts holds them.
func openControl(ids [2]uintptr) (death, ack *os.File) {
	for _, id := range ids {
		windows.SetHandleInformation(windows.Handle(id), windows.HANDLE_FLAG_INHERIT, 0)
	}
	return os.NewFile(ids[0], "multiexit-parent"), os.NewFile(ids[1], "multiexit-ack")
}

// Stop tells the worker to stop by closing its control channel: it sees
// EOF, as when its parent dies, and shuts down with 143; that needs no
// console (CTRL_BREAK_EVENT does).
func (p *Parent) Stop() {
	if p != nil {
		p.death.Close()
	}
}

package contain

import (
	"fmt"
	"log/slog"
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"
)

// The job object that contains this process's tree. It is made at the first
// Start, with JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE, and this process puts
// itself in it, so that every child is born inside: there is no moment
// between CreateProcess and AssignProcessToJobObject in which a child could
// start a process of its own outside the job. The handle is never closed:
// Windows closes it when this process dies, however it dies, and then
// kills whatever is left in the job.
//
// Each worker also inherits the handle (not its value: the worker needs
// none). So when this process is killed, the job outlives it while a worker
// runs: the workers see EOF on their control channel and run their hooks
// (exit code 143), and when the last of them exits the job closes and kills
// everything that is left: external children, their descendants, processes
// started without Start.
//
// The trade-off of putting this process itself in the job: every process it
// starts after its first Start, by any means, is in the job, and is killed
// when this process exits (normally or not) and its workers have exited. A
// process meant to outlive this one must be started before the first Start,
// or by another process. Jobs nest since Windows 8; a worker that starts
// children puts itself in a job of its own inside its parent's.
var job struct {
	once sync.Once
	h    windows.Handle // 0: no containment
}

// Job returns the job's handle, making it at the first call (and putting
// this process in it: every child started after that is born inside); a
// worker that inherits the handle keeps the job open. If it cannot be
// made, the children are not contained: that is logged, once, on log, the
// layer falls back to ProcessGroup, and the result is 0. Call it before
// starting a child. Elsewhere than on Windows it returns 0.
func Job(log *slog.Logger) uintptr {
	job.once.Do(func() {
		h, err := newJob()
		if err != nil {
			log.Warn("multiexit: cannot contain the children in a job object: they will not be killed when this process dies",
				"err", err)
			setLayer(ProcessGroup)
			return
		}
		job.h = h
	})
	return uintptr(job.h)
}

func newJob() (windows.Handle, error) {
	// Inheritable, so that a worker can be handed it; os/exec passes each
	// child only the handles listed for it.
	sa := &windows.SecurityAttributes{InheritHandle: 1}
	sa.Length = uint32(unsafe.Sizeof(*sa))
	h, err := windows.CreateJobObject(sa, nil)
	if err != nil {
		return 0, fmt.Errorf("CreateJobObject: %w", err)
	}
	var info windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION
	info.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
	if _, err := windows.SetInformationJobObject(h, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(h)
		return 0, fmt.Errorf("SetInformationJobObject(JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE): %w", err)
	}
	if err := windows.AssignProcessToJobObject(h, windows.CurrentProcess()); err != nil {
		windows.CloseHandle(h)
		return 0, fmt.Errorf("AssignProcessToJobObject(this process): %w (a job that cannot nest, before Windows 8?)", err)
	}
	return h, nil
}

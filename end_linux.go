package multiexit

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// setDefault sets sig's action to the default, whatever it was: also a
// signal this process was started with ignored (signal.Reset would keep it
// ignored). An all-zero struct sigaction is SIG_DFL, no flags and an empty
// mask on every architecture. It also unblocks sig in the calling thread.
func setDefault(sig syscall.Signal) {
	var act [4]uint64
	syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	var set unix.Sigset_t
	set.Val[(int(sig)-1)/64] |= 1 << (uint(sig-1) % 64)
	unix.PthreadSigmask(unix.SIG_UNBLOCK, &set, nil)
}

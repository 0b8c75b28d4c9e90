//go:build unix

package multiexit

import "syscall"

func markCloseOnExec(fd int) { syscall.CloseOnExec(fd) }

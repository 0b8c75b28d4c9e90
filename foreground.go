package multiexit

import "os/exec"

// foregrounds are the commands Foreground marked.
var foregrounds cmdSet

// Foreground marks cmd, before Start, to be started in the foreground of
// this process's terminal, as a shell starts a job, and returns it: it can
// then read the terminal (without it, a child in its own process group that
// reads the terminal is stopped by SIGTTIN), and the terminal's Ctrl-C
// (SIGINT) and Ctrl-\ (SIGQUIT) go to its process group instead of this
// process's. When it exits, this process takes the foreground back. The
// child still has its own process group, and Start's entry stops it as any
// other child.
//
// The terminal is the child's standard input if that is a terminal, else
// this process's. Foreground does nothing where there is no terminal, where
// this process is not in the terminal's foreground itself (a background
// job), for a command that starts a session of its own (SysProcAttr.Setsid),
// and on Windows (console processes share the console's input).
func Foreground(cmd *exec.Cmd) *exec.Cmd {
	foregrounds.add(cmd)
	return cmd
}

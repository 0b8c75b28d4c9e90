package multiexit

import "os/exec"

// toForeground: a Windows console has no foreground process group.
func toForeground(*exec.Cmd) int { return -1 }

func takeForeground(tty, pgid int) {}

func dropTerminal(tty int) {}

// Command multiexit runs a command and, when it ends, leaves nothing of its
// tree behind: the command's process group and its escapees (setsid, double
// fork) get SIGTERM, the grace period, then SIGKILL, and multiexit returns
// only when nothing is left, with the command's status.
//
//	multiexit [-timeout D] [-grace D] [-g] [-e CODE]... [-v] [--] COMMAND [ARG...]
//
// It is a drop-in for tini, dumb-init and GNU timeout: as PID 1 it reaps
// every zombie; SIGTERM and SIGINT go to the command and then the rest of
// the tree is stopped; every other signal a process can catch (SIGCHLD
// excepted) goes to the command and stops nothing, and a signal that
// multiexit's caller ignored stays ignored in the command. Exit status:
// the command's (its code, or death by the same signal), 124 when -timeout
// fired, 125 when multiexit itself failed, 126 when the command cannot be
// executed, 127 when it was not found. Under a terminal the command runs in its foreground, so that
// an interactive program works and Ctrl-C reaches its process group. On
// Linux with a writable cgroup v2, a SIGKILLed multiexit still takes the
// whole tree down. Under systemd the command's READY=1, STATUS= and
// WATCHDOG=1 reach systemd through multiexit. `multiexit -h` is the manual,
// with where multiexit differs from tini, dumb-init, catatonit and GNU
// timeout on purpose.
//
// Install it with
//
//	go install github.com/multiexit/multiexit/cmd/multiexit@latest
//
// It runs on Linux, macOS and the BSDs; containment beyond process groups
// is Linux's. Built with cgo (the default where a C compiler is installed)
// it reads the signal configuration its caller gave it before the Go
// runtime changes it; CGO_ENABLED=0 builds it static, without that (see
// the SIGNALS section of -h).
package main

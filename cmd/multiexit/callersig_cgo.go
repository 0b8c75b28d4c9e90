//go:build cgo && unix

package main

/*
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

// The caller's signal configuration, read by a constructor: it runs before
// the Go runtime, which replaces the disposition of nearly every signal
// with its own handler before any Go code runs.
static unsigned long long multiexit_ignored, multiexit_blocked;

__attribute__((constructor)) static void multiexit_capture(void) {
	sigset_t mask;
	struct sigaction sa;
	int s;
	sigemptyset(&mask);
	sigprocmask(SIG_BLOCK, NULL, &mask);
	for (s = 1; s < NSIG && s <= 64; s++) {
		if (sigaction(s, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
			multiexit_ignored |= 1ULL << (s - 1);
		if (sigismember(&mask, s) == 1)
			multiexit_blocked |= 1ULL << (s - 1);
	}
}

static unsigned long long multiexit_caller_ignored(void) { return multiexit_ignored; }
static unsigned long long multiexit_caller_blocked(void) { return multiexit_blocked; }

// Some signals never reach os/signal from outside (see runtimeOwned):
// SIGPROF, which the Go runtime's handler takes for its profiler, SIGURG,
// which the runtime sends its own threads to preempt goroutines, and, on
// Linux, 34, which the runtime leaves at its default. This handler writes
// the number of such a signal sent by another process to a pipe instead,
// which multiexit reads and forwards; a SIGURG the runtime sent (si_pid is
// this process) still goes to the runtime's handler.
static int multiexit_sig_fd = -1;
static pid_t multiexit_pid;
static struct sigaction multiexit_go_urg;

static void multiexit_pass(int sig) {
	int saved = errno;
	char b = (char)sig;
	(void)write(multiexit_sig_fd, &b, 1);
	errno = saved;
}

static void multiexit_on_signal(int sig, siginfo_t *info, void *ctx) {
	if (sig == SIGURG && (info == NULL || info->si_pid == multiexit_pid)) {
		if (multiexit_go_urg.sa_flags & SA_SIGINFO)
			multiexit_go_urg.sa_sigaction(sig, info, ctx);
		return;
	}
	multiexit_pass(sig);
}

static int multiexit_catch(int sig, int fd) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = multiexit_on_signal;
	// Go's threads run handlers on their signal stacks.
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigfillset(&sa.sa_mask);
	multiexit_sig_fd = fd;
	multiexit_pid = getpid();
	if (sig == SIGURG && sigaction(SIGURG, NULL, &multiexit_go_urg) != 0)
		return -1;
	return sigaction(sig, &sa, NULL);
}
*/
import "C"

import (
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// callerSignals is the signal configuration multiexit was started with:
// exact, read before the Go runtime started (see the constructor above).
func callerSignals() callerConfig {
	return callerConfig{
		ignored: sigSet(C.multiexit_caller_ignored()),
		blocked: sigSet(C.multiexit_caller_blocked()),
		exact:   true,
	}
}

// cCaught is the channel the signals caught in C go to (see
// multiexit_on_signal), and the pipe they come through.
var cCaught struct {
	once sync.Once
	fd   int // the pipe's write end, or -1
	c    chan<- os.Signal
}

// catchInC makes sig (see runtimeOwned) sent by another process reach c,
// dropped as os/signal drops a signal when c is full; it reports whether
// it could. Every call must pass the same c.
func catchInC(sig syscall.Signal, c chan<- os.Signal) bool {
	cCaught.once.Do(func() {
		cCaught.fd, cCaught.c = -1, c
		var p [2]int
		if unix.Pipe(p[:]) != nil {
			return
		}
		// Non-blocking: a full pipe drops a signal rather than block the
		// handler, and the read end is the runtime poller's. The write
		// end stays open for the process's life.
		for _, fd := range p {
			unix.CloseOnExec(fd)
			unix.SetNonblock(fd, true)
		}
		cCaught.fd = p[1]
		go readCaught(os.NewFile(uintptr(p[0]), "multiexit-signals"), c)
	})
	return cCaught.fd >= 0 && C.multiexit_catch(C.int(sig), C.int(cCaught.fd)) == 0
}

func readCaught(r *os.File, c chan<- os.Signal) {
	b := make([]byte, 64)
	for {
		n, err := r.Read(b)
		if err != nil {
			return
		}
		for _, sig := range b[:n] {
			select {
			case c <- syscall.Signal(sig):
			default:
			}
		}
	}
}

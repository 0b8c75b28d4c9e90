//go:build cgo && linux

package main

/*
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// The guardian of the cgroup layer (see contain.WaitFirst): started with
// MULTIEXIT_GUARDIAN_WAIT=5, this process waits here, before the Go
// runtime starts, until every write end of the pipe on descriptor 5 is
// closed (multiexit died, or left the tree to it), then starts Go, whose
// package initialisation makes it the guardian. Meanwhile it ignores the
// signals the guardian ignores (a service manager's SIGTERM to every
// process of the service must not end it before multiexit's SIGKILL).
__attribute__((constructor)) static void multiexit_guardian_wait(void) {
	const char *v = getenv("MULTIEXIT_GUARDIAN_WAIT");
	struct stat st;
	char b[64];
	if (v == NULL || strcmp(v, "5") != 0 || getenv("MULTIEXIT_GUARDIAN") == NULL)
		return;
	unsetenv("MULTIEXIT_GUARDIAN_WAIT");
	if (fstat(5, &st) != 0 || !S_ISFIFO(st.st_mode))
		return;
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	for (;;) {
		ssize_t n = read(5, b, sizeof b);
		if (n == 0 || (n < 0 && errno != EINTR))
			break;
	}
	close(5);
}
*/
import "C"

import "github.com/multiexit/multiexit/internal/contain"

// The guardian waits in C, and starts Go only if multiexit dies first: a
// run of COMMAND that ends normally kills it unstarted, and its start does
// not compete with multiexit's and COMMAND's for the CPUs.
func init() {
	contain.WaitFirst = true
}

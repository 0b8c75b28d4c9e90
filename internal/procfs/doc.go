// Package procfs reads what Linux's /proc tells of other processes: the
// fields of /proc/PID/stat (state, parent, start time, flags), a bounded
// look into /proc/PID/environ, and a process's children. Each read is a
// few system calls and allocates little: the containment reads one such
// file per child of the process on every scan. On other systems the
// package is empty.
package procfs

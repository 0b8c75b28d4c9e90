// Command mxbench measures a multiexit worker pool against the least
// hand-written Go program that does a pool's job, in turns, in one run.
//
// Both pools start N children of this binary, each in its own process
// group; each child writes a ready line and, on SIGTERM, appends two lines
// to a log file and exits. The floor's parent signals each child's group
// and waits for all of them; multiexit's parent is Install, Command and
// Start, and its workers are Register and Install.
//
// For every N it measures, for each pool, "launch to all ready" (from
// starting the pool's parent until every child has written its ready line)
// and "SIGTERM to nothing left" (from SIGTERM to the parent until the parent
// has exited and every child is gone), and it samples the parent's memory,
// threads and descriptors with the children running. It prints medians,
// minimums, maximums and ratios multiexit/floor, and can write an SVG plot
// of latency against N.
//
// With -python python3 (an interpreter that imports Python's multiexit,
// pip install multiexit==1.5.0) it also runs Python's multiexit doing the
// same pool, in the same turns, and compares its phases with multiexit's.
//
// From the module's root:
//
//	go run ./cmd/mxbench -n 9 -sizes 8,64,256 -python python3 -svg docs/bench.svg
//
// mxbench runs on Linux.
package main

package main

import (
	"io"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// quietStderr returns a writer for f, multiexit's standard error, whose
// writes are made from one OS thread that blocks SIGPIPE and SIGTTOU. A
// write to a broken pipe then returns EPIPE without raising a SIGPIPE, and
// one to the terminal from its background (stty tostop) goes through
// without raising a SIGTTOU: multiexit forwards both signals to COMMAND,
// and could not tell such a signal of its own from one sent to it.
func quietStderr(f *os.File) io.Writer {
	w := &threadWriter{f: f, reqs: make(chan []byte), done: make(chan writeResult)}
	ok := make(chan bool)
	go w.loop(ok)
	if !<-ok {
		return f
	}
	return w
}

type threadWriter struct {
	f    *os.File
	reqs chan []byte
	done chan writeResult
}

type writeResult struct {
	n   int
	err error
}

func (w *threadWriter) Write(p []byte) (int, error) {
	w.reqs <- p
	r := <-w.done
	return r.n, r.err
}

// loop makes the writes, on a thread of its own for the process's life
// (locked and never unlocked, so no other goroutine runs with its mask).
func (w *threadWriter) loop(ok chan<- bool) {
	runtime.LockOSThread()
	set := toSigset(sigSet(0).with(unix.SIGPIPE).with(unix.SIGTTOU))
	ok <- unix.PthreadSigmask(unix.SIG_BLOCK, set, nil) == nil
	for p := range w.reqs {
		n, err := w.f.Write(p)
		w.done <- writeResult{n, err}
	}
}

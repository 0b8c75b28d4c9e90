package main

import (
	"io"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// quietStderr returns a writer for f, multiexit's standard error, whose
// writes are made from one OS thread that blocks SIGPIPE and SIGTTOU. A
// write to a broken pipe then returns EPIPE without raising a SIGPIPE, and
// one to the terminal from its background (stty tostop) goes through
// without raising a SIGTTOU: multiexit forwards both signals to COMMAND,
// and could not tell such a signal of its own from one sent to it. The
// thread is made at the first write, not at start: most runs write
// nothing, and making it (a new OS thread, waited for) took about 2 ms of
// every run's start.
func quietStderr(f *os.File) io.Writer {
	return &threadWriter{f: f}
}

type threadWriter struct {
	f     *os.File
	start sync.Once
	ok    bool // the thread runs, with the signals blocked
	reqs  chan []byte
	done  chan writeResult
}

type writeResult struct {
	n   int
	err error
}

func (w *threadWriter) Write(p []byte) (int, error) {
	w.start.Do(func() {
		w.reqs, w.done = make(chan []byte), make(chan writeResult)
		ok := make(chan bool)
		go w.loop(ok)
		w.ok = <-ok
	})
	if !w.ok {
		return w.f.Write(p)
	}
	w.reqs <- p
	r := <-w.done
	return r.n, r.err
}

// loop makes the writes, on a thread of its own for the process's life
// (locked and never unlocked, so no other goroutine runs with its mask).
// If it cannot block the signals it ends at once (its thread with it) and
// the writes are made by the writers themselves.
func (w *threadWriter) loop(ok chan<- bool) {
	runtime.LockOSThread()
	set := toSigset(sigSet(0).with(unix.SIGPIPE).with(unix.SIGTTOU))
	if unix.PthreadSigmask(unix.SIG_BLOCK, set, nil) != nil {
		ok <- false
		return
	}
	ok <- true
	for p := range w.reqs {
		n, err := w.f.Write(p)
		w.done <- writeResult{n, err}
	}
}

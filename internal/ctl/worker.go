package ctl

import (
	"os"
	"sync/atomic"
	"time"
)

// Worker is a worker's end of its control channel: what its parent said,
// and whether the parent's end closed (the parent died; on Windows, or it
// stopped this worker). Its zero value is a channel on which nothing was
// heard, for tests.
type Worker struct {
	kernel bool     // Linux: the kernel watches the end fd (see Signalled)
	fd     int      // the end the kernel watches, if kernel
	death  *os.File // elsewhere: the end Watch reads
	ack    *os.File
	// What the parent said (read by Watch, or by Left where the kernel
	// watches the end): nanoseconds; whether the end closed, and when this
	// worker first saw it closed (monotonicNow).
	deadline, given atomic.Int64
	died            atomic.Bool
	diedAt          atomic.Int64
}

// OpenWorker opens a worker's ends of the channel, ids (see Registry),
// close-on-exec so that the programs the worker runs do not hold them. On
// Linux it asks the kernel to send this process SIGTERM when the parent's
// end closes and at each line the parent writes (see Signalled), and
// reports whether the parent's end is closed already (hungUp: the kernel
// sent nothing for that). Elsewhere the caller runs Watch.
func OpenWorker(ids [2]uintptr) (w *Worker, hungUp bool) {
	w = &Worker{}
	if armed, hup := signalOnHangup(int(ids[0])); armed {
		// The kernel watches the death end: it stays open, as a bare
		// descriptor (no *os.File whose finalizer would close it), for
		// the process's life.
		w.kernel, w.fd = true, int(ids[0])
		w.ack = openAck(ids)
		return w, hup
	}
	w.death, w.ack = openControl(ids)
	return w, false
}

// Signalled reports whether the kernel turns the parent's end and lines
// into SIGTERM (Linux): then nothing needs to read the channel but Left.
func (w *Worker) Signalled() bool { return w.kernel }

// Watch reads what the parent says until its end of the channel closes:
// the parent died, however it died (on Windows: or stopped this worker).
// It calls heard after each read that brought at least one line, and
// returns once the end closed. It returns at once where the channel is
// Signalled.
func (w *Worker) Watch(heard func()) {
	if w.death == nil {
		return
	}
	var buf [64]byte
	var line []byte
	for {
		n, err := w.death.Read(buf[:])
		got := false
		for _, b := range buf[:n] {
			if b != '\n' {
				line = append(line, b)
				continue
			}
			w.Hear(line)
			line = line[:0]
			got = true
		}
		if got {
			heard()
		}
		if err != nil {
			break
		}
	}
	w.sawDeath()
}

// sawDeath records that the parent's end of the control channel closed.
func (w *Worker) sawDeath() {
	if w.died.CompareAndSwap(false, true) {
		w.diedAt.Store(int64(monotonicNow()))
	}
}

// Hear records one line from the parent, without its newline (see
// BudgetLine, DeadlineLine); any other line is ignored.
func (w *Worker) Hear(line []byte) {
	line = trimNewline(line)
	if len(line) < 2 {
		return
	}
	ns, ok := parseNanos(line[1:])
	switch {
	case !ok:
	case line[0] == msgDeadline:
		w.deadline.Store(ns)
	case line[0] == msgBudget:
		w.given.Store(ns)
	}
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[:n-1]
	}
	return b
}

// parseNanos parses a positive decimal without allocating.
func parseNanos(b []byte) (int64, bool) {
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' || n > (1<<62)/10 {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, len(b) > 0 && n > 0
}

// Left is the time the parent gives this worker, from now, if it said
// (0 if not known; below 0 if it passed): the budget of its stop (the
// last it said), or, once the parent died, its deadline counted from when
// this worker first saw it die (as the guardian counts, from its own
// pipe's end), whichever order the word of it came in: the shorter of the
// two. died says that the parent's end closed. Where the channel is
// Signalled, Left first reads what waits on it, without blocking.
func (w *Worker) Left() (d time.Duration, died bool) {
	w.readNow()
	died = w.died.Load()
	now := monotonicNow()
	known := false
	if end := w.given.Load(); end > 0 {
		d, known = time.Duration(end)-now, true
	}
	if parent := time.Duration(w.deadline.Load()); died && parent > 0 {
		left := parent - (now - time.Duration(w.diedAt.Load()))
		if !known || left < d {
			d = left
		}
	}
	return d, died
}

// readNow reads what is waiting on the end the kernel watches, without
// blocking.
func (w *Worker) readNow() {
	if !w.kernel {
		return
	}
	var buf [128]byte
	var line [32]byte
	ln := 0
	for {
		n, err := readNonblock(w.fd, buf[:])
		if n == 0 && err == nil {
			w.sawDeath()
			return
		}
		if n <= 0 {
			return
		}
		for _, b := range buf[:n] {
			switch {
			case b == '\n':
				w.Hear(line[:ln])
				ln = 0
			case ln < len(line):
				line[ln] = b
				ln++
			}
		}
	}
}

// Acknowledge tells the parent that Install ran. The end stays open (it is
// close-on-exec) for Retire's word, and closes when the worker exits.
func (w *Worker) Acknowledge() { w.say(AckInstalled) }

// Retire tells the parent that this worker ends for good.
func (w *Worker) Retire() { w.say(AckRetire) }

func (w *Worker) say(a Ack) {
	if w.ack != nil {
		w.ack.Write([]byte{byte(a)})
	}
}

// SayCaught tells the parent, on the acknowledgement end of ids, before
// the ends are opened (package initialisation), that a SIGTERM can no
// longer kill this worker without its hooks.
func SayCaught(ids [2]uintptr) { writeByte(ids[1], byte(AckCaught)) }

package ctl

import (
	"os"
	"os/exec"
	"strconv"
	"time"
)

// The control channel carries, from the parent to the worker, besides its
// end (the parent died, or on Windows: stop), lines of text:
//
//	d<nanoseconds>	the parent's shutdown deadline (WithTimeout), written at
//			Start: the worker's budget if the parent dies
//	b<nanoseconds>	until when the worker has to stop, on CLOCK_MONOTONIC
//			(which every process shares), written just before the
//			parent's SIGTERM
//
// so that a worker's stop fits the time its parent gives it (see "One
// budget for the tree" in package multiexit's documentation).
const (
	msgDeadline = 'd'
	msgBudget   = 'b'
)

// Ack is what a worker writes on the acknowledgement end, one byte each.
type Ack byte

const (
	AckCaught    Ack = 'i' // package initialisation caught SIGTERM
	AckInstalled Ack = 'a' // Install ran: the worker's hooks are in place
	AckRetire    Ack = 'r' // Retire: the worker ends for good (see multiexit.Supervise)
)

// BudgetLine is the line that tells a worker it has until until to stop.
func BudgetLine(until time.Time) []byte { return line(msgBudget, int64(monotonicAt(until))) }

// DeadlineLine is the line that tells a worker its parent's shutdown
// deadline, d.
func DeadlineLine(d time.Duration) []byte { return line(msgDeadline, int64(d)) }

// line is one line of kind with n, or nil if n is not above 0: nothing to
// tell.
func line(kind byte, n int64) []byte {
	if n <= 0 {
		return nil
	}
	var b [24]byte
	return append(strconv.AppendInt(append(b[:0], kind), n, 10), '\n')
}

// Parent is a parent's end of one worker's control channel. A nil *Parent
// (an external child's) is valid: its methods do nothing.
type Parent struct {
	ack   *os.File    // read: the worker's acknowledgements
	death *os.File    // written: the lines; closed: the parent died (Windows: stop)
	child [2]*os.File // the worker's ends, open here until it started
}

// Open makes the control channel of cmd, a worker not yet started, and
// passes it the worker's ends: on Unix as extra descriptors after any the
// caller set, on Windows as inherited handles, with job (the job object's
// handle, if not 0: see contain.Job). It tells the worker deadline, this
// process's shutdown deadline (its budget if this process dies), and
// returns the ids the registry carries (see Registry). The caller calls
// Started once cmd.Start has returned, or Close if it is not started.
func Open(cmd *exec.Cmd, job uintptr, deadline time.Duration) (*Parent, [2]uintptr, error) {
	deathR, deathW, err := deathPipe()
	if err != nil {
		return nil, [2]uintptr{}, err
	}
	ackR, ackW, err := os.Pipe()
	if err != nil {
		closeAll(deathR, deathW)
		return nil, [2]uintptr{}, err
	}
	p := &Parent{ack: ackR, death: deathW, child: [2]*os.File{deathR, ackW}}
	p.tell(DeadlineLine(deadline)) // read if this process dies
	return p, pass(cmd, p.child, job), nil
}

// Started closes the worker's ends in this process, once cmd.Start has
// returned (whether or not it started the worker).
func (p *Parent) Started() {
	if p != nil {
		closeAll(p.child[0], p.child[1])
	}
}

// Close closes every end of a channel whose worker was not started.
func (p *Parent) Close() {
	if p != nil {
		closeAll(p.child[0], p.child[1], p.ack, p.death)
	}
}

// TellBudget tells the worker it has until until to stop (see BudgetLine).
func (p *Parent) TellBudget(until time.Time) {
	p.tell(BudgetLine(until))
}

// tell writes line: far below the pipe's buffer, so that it never blocks.
func (p *Parent) tell(line []byte) {
	if p == nil || line == nil {
		return
	}
	p.death.Write(line)
}

// Hangup closes the parent's end of the channel: the worker sees its
// parent gone. Start calls it once the worker was reaped.
func (p *Parent) Hangup() {
	if p != nil {
		p.death.Close()
	}
}

// ReadAcks calls f with each acknowledgement the worker writes, until the
// end closes (the worker exited, or closed it), and then closes it. It
// runs apart from the reaping: a worker that never calls Install may leave
// its end open in a grandchild.
func (p *Parent) ReadAcks(f func(Ack)) {
	var b [1]byte
	for {
		n, err := p.ack.Read(b[:])
		if n == 1 {
			f(Ack(b[0]))
		}
		if err != nil {
			break
		}
	}
	p.ack.Close()
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

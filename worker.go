package multiexit

// A worker: this binary as Command and Start run it. Package
// initialisation verifies the registry its parent passed (MULTIEXIT) and
// holds SIGTERM until Install; Install commits it (the inherited shared
// hooks at the bottom of the stack) and watches the parent through the
// control channel, whose lines give the worker its budget.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/multiexit/multiexit/internal/osproc"
)

// registry is what MULTIEXIT carries:
//
//	1:<parent pid>:<control ids>:<hooks as JSON>
//
// for example 1:4242:3,4:[{"n":"cleanup","a":"/tmp/x"}]. The control ids
// are the worker's ends of the control channel (descriptor numbers on Unix,
// handle values on Windows): first the one it reads (EOF means the parent
// died), then the one it writes its acknowledgement to. The hooks are listed
// in the order the parent registered them.
type registry struct {
	ppid  int
	ctl   [2]uintptr
	hooks []wireHook
}

type wireHook struct {
	N string          `json:"n"`
	A json.RawMessage `json:"a"`
}

func encodeRegistry(ppid int, ctl [2]uintptr, hooksJSON string) (string, error) {
	s := registryVersion + ":" + strconv.Itoa(ppid) + ":" +
		strconv.FormatUint(uint64(ctl[0]), 10) + "," + strconv.FormatUint(uint64(ctl[1]), 10) + ":" + hooksJSON
	if len(s) > MaxRegistry {
		return "", fmt.Errorf("multiexit: %s registry is %d bytes, more than the %d allowed: shared hook arguments too large", EnvVar, len(s), MaxRegistry)
	}
	return s, nil
}

// decodeRegistry parses MULTIEXIT. Its errors name the byte offset.
func decodeRegistry(s string) (*registry, error) {
	bad := func(off int, format string, args ...any) error {
		return fmt.Errorf("multiexit: %s: byte %d: %s", EnvVar, off, fmt.Sprintf(format, args...))
	}
	if len(s) > MaxRegistry {
		return nil, bad(MaxRegistry, "registry is %d bytes, more than the %d allowed", len(s), MaxRegistry)
	}
	if s == pending {
		return nil, bad(0, "worker was started with exec.Cmd.Start, not multiexit.Start")
	}
	fields := strings.SplitN(s, ":", 4)
	if fields[0] != registryVersion {
		if len(fields) == 1 || len(fields[0]) > 8 {
			return nil, bad(0, "not a multiexit registry (want %q followed by ':')", registryVersion)
		}
		return nil, bad(0, "unknown format version %q (this binary reads version %s)", fields[0], registryVersion)
	}
	if len(fields) < 4 {
		return nil, bad(len(s), "truncated: want 4 fields separated by ':', found %d", len(fields))
	}
	r := &registry{}
	off := len(fields[0]) + 1
	pid, err := strconv.Atoi(fields[1])
	if err != nil || pid <= 0 {
		return nil, bad(off, "parent PID %q is not a positive number", fields[1])
	}
	r.ppid = pid
	off += len(fields[1]) + 1
	ids := strings.Split(fields[2], ",")
	if len(ids) != 2 {
		return nil, bad(off, "control ids %q: want two numbers separated by ','", fields[2])
	}
	for i, id := range ids {
		v, err := strconv.ParseUint(id, 10, 63)
		switch {
		case err != nil:
			return nil, bad(off, "control id %q is not a number", id)
		case v < 3:
			return nil, bad(off, "control id %d is a standard descriptor (standard input, output or error)", v)
		case i == 1 && uintptr(v) == r.ctl[0]:
			return nil, bad(off, "control id %d is given twice", v)
		}
		r.ctl[i] = uintptr(v)
		off += len(id) + 1
	}
	dec := json.NewDecoder(strings.NewReader(fields[3]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r.hooks); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, bad(off+int(se.Offset)-1, "hooks: %v", err) // the offending byte
		case errors.As(err, &te):
			return nil, bad(off+int(te.Offset)-1, "hooks: %v", err) // the value's last byte
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil, bad(len(s), "hooks: truncated JSON")
		}
		return nil, bad(off, "hooks: %v", err)
	}
	if rest := dec.InputOffset(); int(rest) != len(fields[3]) && len(bytes.TrimSpace([]byte(fields[3][rest:]))) > 0 {
		return nil, bad(off+int(rest), "trailing data after the hooks")
	}
	if r.hooks == nil {
		return nil, bad(off, "hooks: want a JSON list, found null")
	}
	for i, h := range r.hooks {
		if h.N == "" {
			return nil, bad(off, "hook %d: empty name", i)
		}
		if len(h.A) == 0 {
			return nil, bad(off, "hook %d (%q): no argument", i, h.N)
		}
	}
	return r, nil
}

// inherited is what a worker's Install decoded, before it commits to it.
type inherited struct {
	reg   *registry
	hooks []*Handle
}

// asWorker is what package initialisation found of this process's start
// as a worker.
var asWorker struct {
	env string // MULTIEXIT as the process started; Install removes it from the environment
	set bool   // MULTIEXIT was set: this process is a worker
	// early holds a worker's SIGTERM from package initialisation until
	// Install: a parent may stop a worker before it has called Install,
	// and the worker must still run the hooks it registered (see Start).
	// It is caught only once the registry, the parent included, has been
	// verified.
	early chan os.Signal
	// reg is the registry init verified, so that a refused Install can
	// undo what init did.
	reg *registry
	// ack is the acknowledgement end once Install used it (see Retire).
	ack atomic.Pointer[os.File]
}

// IsChild reports whether this process was started as a worker (by Command
// and Start): MULTIEXIT was set when it started.
func IsChild() bool { return asWorker.set }

// init verifies a worker's registry, changing nothing on error, and only
// then touches its descriptors: they become close-on-exec, so that what the
// worker runs before Install does not hold them.
func init() {
	asWorker.env, asWorker.set = os.LookupEnv(EnvVar)
	if !asWorker.set {
		return
	}
	reg, err := verifyRegistry(true)
	if err != nil {
		return // Install reports it
	}
	closeOnExec(reg.ctl)
	asWorker.reg = reg
	asWorker.early = make(chan os.Signal, 8)
	signal.Notify(asWorker.early, syscall.SIGTERM)
	// Tell the parent that a SIGTERM can no longer kill this worker
	// without its hooks.
	writeByte(reg.ctl[1], ackCaught)
}

// undoInit undoes what init did for a registry that Install then refused
// (a hook this binary does not define): SIGTERM is no longer held, and the
// descriptors are inheritable again.
func undoInit() {
	if asWorker.early == nil {
		return
	}
	signal.Stop(asWorker.early)
	asWorker.early = nil
	inheritable(asWorker.reg.ctl)
}

// verifyRegistry decodes MULTIEXIT and checks that it was written for this
// process: by its parent, and (if control) with open pipes as the control
// channel.
func verifyRegistry(control bool) (*registry, error) {
	reg, err := decodeRegistry(asWorker.env)
	if err != nil {
		return nil, err
	}
	if ppid := os.Getppid(); ppid != reg.ppid {
		return nil, fmt.Errorf("multiexit: %s: registry was written for parent PID %d, but this process's parent is %d (replayed, or the parent died)", EnvVar, reg.ppid, ppid)
	}
	if !control {
		return reg, nil
	}
	if err := checkControl(reg.ctl); err != nil {
		return nil, fmt.Errorf("multiexit: %s: control channel: %w", EnvVar, err)
	}
	return reg, nil
}

// decodeWorker checks the registry a worker inherited, changing nothing.
func decodeWorker() (*inherited, error) {
	if !asWorker.set {
		return nil, nil
	}
	reg, err := verifyRegistry(false)
	if err != nil {
		return nil, err
	}
	in := &inherited{reg: reg}
	defs.mu.Lock()
	defer defs.mu.Unlock()
	for i, w := range reg.hooks {
		def, ok := defs.byName[w.N]
		if !ok {
			undoInit()
			return nil, fmt.Errorf("multiexit: %s: hook %d: %q is not defined in this binary (no Define(%q))", EnvVar, i, w.N, w.N)
		}
		hook, err := def.bind(w.A)
		if err != nil {
			undoInit()
			return nil, fmt.Errorf("multiexit: %s: hook %d: argument of %q (defined at %s): %v", EnvVar, i, w.N, def.where, err)
		}
		// Keep the argument: a worker's own workers inherit the hook too.
		in.hooks = append(in.hooks, &Handle{name: w.N, hook: hook, shared: &sharedArg{name: w.N, arg: w.A}})
	}
	if err := checkControl(reg.ctl); err != nil {
		return nil, fmt.Errorf("multiexit: %s: control channel: %w", EnvVar, err)
	}
	return in, nil
}

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
// budget for the tree" in the package documentation).
const (
	msgDeadline = 'd'
	msgBudget   = 'b'
)

// workerControl is a worker's end of the control channel.
type workerControl struct {
	ppid    int
	deathFD int      // Linux: the end the kernel watches (-1 if it does not)
	death   *os.File // elsewhere: the end watch reads
	ack     *os.File
	// What the parent said (read by watch, or by readControl where the
	// kernel watches the end): nanoseconds; whether the end closed, and
	// when this worker first saw it closed (monotonicNow).
	deadline, given atomic.Int64
	died            atomic.Bool
	diedAt          atomic.Int64
}

// commit makes the decoded registry this worker's (it reports whether the
// parent has died already: then the caller begins the shutdown, once the
// worker is in place): the inherited hooks at
// the bottom of the stack, MULTIEXIT out of the environment (so that the
// worker's own non-worker children do not inherit it), SIGPIPE caught and
// dropped, SIGINT caught (passed to the parent while this worker holds the
// terminal, see Foreground), and the parent watched: the end of the control
// channel. On Linux the kernel turns that end (and each line the parent
// writes) into SIGTERM (see signalOnHangup), which begins the same shutdown
// with nothing kept waiting for it; elsewhere a goroutine reads the channel
// to its end.
func (in *inherited) commit() (w *workerControl, parentGone bool) {
	exitStack.pushBottom(in.hooks)
	os.Unsetenv(EnvVar)
	// Caught, not ignored: an ignored disposition would pass on to every
	// program this worker executes; a caught one is reset by exec. A caught
	// SIGPIPE makes a write to a dead parent's pipe fail with EPIPE instead
	// of killing the worker before its hooks ran. A SIGINT is the
	// terminal's Ctrl-C for the parent when this worker holds the
	// terminal (Foreground): osproc.RelayInterrupts passes it on.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	osproc.RelayInterrupts(in.reg.ppid)
	w = &workerControl{ppid: in.reg.ppid, deathFD: -1}
	if armed, hungUp := signalOnHangup(int(in.reg.ctl[0])); armed {
		// The kernel watches the death end: it stays open, as a bare
		// descriptor (no *os.File whose finalizer would close it), for
		// the process's life.
		w.deathFD = int(in.reg.ctl[0])
		w.ack = openAck(in.reg.ctl)
		return w, hungUp
	}
	w.death, w.ack = openControl(in.reg.ctl)
	go w.watch()
	return w, false
}

// watch reads what the parent says until its end of the control channel
// closes: the parent died, however it died (on Windows: or stopped this
// worker).
func (w *workerControl) watch() {
	var buf [64]byte
	var line []byte
	for {
		n, err := w.death.Read(buf[:])
		heard := false
		for _, b := range buf[:n] {
			if b != '\n' {
				line = append(line, b)
				continue
			}
			w.heard(line)
			line = line[:0]
			heard = true
		}
		if heard {
			rt.heardParent() // a stop's budget after the shutdown began
		}
		if err != nil {
			break
		}
	}
	w.sawDeath()
	w.parentDied()
}

// sawDeath records that the parent's end of the control channel closed:
// the parent died (on Windows: or stopped this worker).
func (w *workerControl) sawDeath() {
	if w.died.CompareAndSwap(false, true) {
		w.diedAt.Store(int64(monotonicNow()))
	}
}

// heard records one line from the parent.
func (w *workerControl) heard(line []byte) {
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

// budget is the time the parent gives this worker to stop, if it said:
// deadline for its hooks, hard for everything (the late windows of hooks
// that overran included) before the parent's SIGKILL. If the parent has
// died, the budget is what is left to its guardian: the parent's deadline,
// counted from when this worker saw the death (the guardian counts from
// the same moment, its own pipe's end), whichever order the kernel's
// word of it came in. The shorter of the two counts. The margins leave
// the worker room to abandon a hook, and the parent room to see it exit,
// before the parent's own time runs out.
func (w *workerControl) budget() (deadline, hard time.Duration, died bool) {
	w.readControl()
	died = w.died.Load()
	now := monotonicNow()
	var d time.Duration
	known := false
	if end := w.given.Load(); end > 0 {
		d, known = time.Duration(end)-now, true
	}
	if parent := time.Duration(w.deadline.Load()); died && parent > 0 {
		left := parent - (now - time.Duration(w.diedAt.Load()))
		if !known || left < d {
			d, known = left, true
		}
	}
	deadline, hard = splitBudget(d)
	return deadline, hard, died
}

// splitBudget splits d, the time a worker has before its parent's SIGKILL,
// into the deadline for its hooks and the hard end of the late windows.
// Between the two the worker must be able to abandon a hook that overran
// the deadline (abandonSlack) and still give the hooks after it a window:
// so the deadline keeps a tenth of d back, at least twice abandonSlack, at
// most half of d and 500 ms; the hard end leaves the parent a fiftieth of
// d, at most 50 ms, to see the worker exit. Zero for d <= 0.
func splitBudget(d time.Duration) (deadline, hard time.Duration) {
	if d <= 0 {
		return 0, 0
	}
	reserve := min(max(d/10, 2*abandonSlack), d/2, 500*time.Millisecond)
	return d - reserve, d - min(d/50, 50*time.Millisecond)
}

// readControl reads what is waiting on the end the kernel watches, without
// blocking.
func (w *workerControl) readControl() {
	if w.deathFD < 0 {
		return
	}
	var buf [128]byte
	var line [32]byte
	ln := 0
	for {
		n, err := readNonblock(w.deathFD, buf[:])
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
				w.heard(line[:ln])
				ln = 0
			case ln < len(line):
				line[ln] = b
				ln++
			}
		}
	}
}

// link is w as the shutdown's parentLink: nil (not a typed nil) in a
// parent, which has no workerControl.
func (w *workerControl) link() parentLink {
	if w == nil {
		return nil
	}
	return w
}

func (w *workerControl) deathCause() error {
	return fmt.Errorf("multiexit: parent process %d died", w.ppid)
}

// parentDied begins the shutdown, or, if it has begun, gives it the time
// the parent's death leaves (see budget).
func (w *workerControl) parentDied() {
	if !rt.begin(128+int(syscall.SIGTERM), syscall.SIGTERM, w.deathCause(), byParentDeath) {
		rt.heardParent()
	}
}

// What a worker writes on the acknowledgement end of the control channel.
const (
	ackCaught    = 'i' // package initialisation caught SIGTERM
	ackInstalled = 'a' // Install ran: the worker's hooks are in place
	ackRetire    = 'r' // Retire: the worker ends for good (see Supervise)
)

// acknowledge tells the parent that Install ran. The end stays open (it is
// close-on-exec) for Retire's word, and closes when the worker exits.
func (w *workerControl) acknowledge() {
	if w.ack != nil {
		w.ack.Write([]byte{ackInstalled})
		asWorker.ack.Store(w.ack)
	}
}

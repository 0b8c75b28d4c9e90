package multiexit

import (
	"os"
	"os/signal"
	"syscall"
)

// signalSetup is how the caught signals reach the shutdown. The finisher
// itself waits for the first one, so that a signal wakes one goroutine, as
// in a program that waits for it in main. Only once the shutdown has begun
// are the signals also sent to later, whose goroutine handles escalation;
// registering it then wakes no one.
type signalSetup struct {
	first chan os.Signal // the finisher's
	later chan os.Signal // registered when the shutdown begins
	sigs  []os.Signal
	catch func(chan<- os.Signal, ...os.Signal) // signal.Notify, or a test's
}

// newSignalSetup catches sigs through catch; handle gets those that come
// once the shutdown has begun, until quit is closed. first may be a channel
// that already catches some signals (a worker's SIGTERM, caught from
// package initialisation).
func newSignalSetup(catch func(chan<- os.Signal, ...os.Signal), first chan os.Signal, sigs []os.Signal, handle func(os.Signal), quit <-chan struct{}) signalSetup {
	if first == nil {
		first = make(chan os.Signal, 8)
	}
	if len(sigs) > 0 { // signal.Notify with no signals would catch them all
		catch(first, sigs...)
	}
	s := signalSetup{first: first, later: make(chan os.Signal, 8), sigs: sigs, catch: catch}
	go func() {
		for {
			select {
			case sig := <-s.later:
				handle(sig)
			case <-quit:
				return
			}
		}
	}()
	return s
}

// hearLater sends the signals to handle from now on, and handles those
// that came to first meanwhile. A signal that comes to both is handled
// twice, which is harmless: there is one escalation.
func (s signalSetup) hearLater(handle func(os.Signal)) {
	if len(s.sigs) == 0 {
		return
	}
	s.catch(s.later, s.sigs...)
	for {
		select {
		case sig := <-s.first:
			handle(sig)
		default:
			return
		}
	}
}

// catchSignals is the set Install catches. SIGINT that the process was
// started with ignored stays ignored unless WithSignals names it. A worker
// never catches SIGINT (its parent orchestrates a terminal's Ctrl-C), and
// always catches SIGTERM (its parent's stop, and its parent's death).
func catchSignals(cfg config, worker bool) []os.Signal {
	var out []os.Signal
	term := false
	for _, s := range cfg.signals {
		switch {
		case s == os.Interrupt && worker:
			continue
		case s == os.Interrupt && !cfg.signalsSet && signal.Ignored(os.Interrupt):
			continue
		case s == syscall.SIGTERM:
			term = true
		}
		out = append(out, s)
	}
	if worker && !term {
		out = append(out, syscall.SIGTERM)
	}
	return out
}

// signalCode is 128+signal, the exit code of a process that a signal ended
// where it cannot die by that signal.
func signalCode(sig os.Signal) int {
	code := 128
	if s, ok := sig.(syscall.Signal); ok {
		code += int(s)
	}
	return code
}

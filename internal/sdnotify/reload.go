package sdnotify

import "strconv"

// Reloading tells the service manager that the process begins a reload,
// in one datagram: RELOADING=1, MONOTONIC_USEC= (now, on CLOCK_MONOTONIC,
// in microseconds: systemd's Type=notify-reload ignores RELOADING=1 without
// it and waits out its timeout) and, if status is not empty, STATUS=. The
// reload ends with [Reloaded]. When Enabled is false it does nothing.
func Reloading(status string) error {
	if !Enabled() {
		return nil
	}
	return Send(ReloadingMessage(monotonicUsec(), status))
}

// ReloadingMessage is the datagram of Reloading at usec microseconds of
// CLOCK_MONOTONIC.
func ReloadingMessage(usec int64, status string) string {
	msg := "RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10)
	if status != "" {
		msg += "\nSTATUS=" + status
	}
	return msg
}

// Reloaded ends a reload that Reloading began, whether it succeeded or
// not (systemd has no word for a failed reload: status says it): READY=1
// and, if status is not empty, STATUS=, in one datagram. When Enabled is
// false it does nothing.
func Reloaded(status string) error {
	if !Enabled() {
		return nil
	}
	msg := "READY=1"
	if status != "" {
		msg += "\nSTATUS=" + status
	}
	return Send(msg)
}

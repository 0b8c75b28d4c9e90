package multiexit

import "errors"

// sendDatagram fails: Windows has no service manager that reads
// NOTIFY_SOCKET.
func sendDatagram(addr, msg string) error {
	return errors.New("not supported on Windows")
}

// notifying is false: Windows has no service manager that reads
// NOTIFY_SOCKET (Ready still reports one that is set as unsupported). It
// looks nothing up: a lookup of the environment allocates on Windows, and
// a worker's shutdown begins without allocating.
func notifying() bool { return false }

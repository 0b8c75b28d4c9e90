package multiexit

import "errors"

// sendDatagram fails: Windows has no service manager that reads
// NOTIFY_SOCKET.
func sendDatagram(addr, msg string) error {
	return errors.New("not supported on Windows")
}

package sdnotify

import (
	"errors"
	"fmt"
)

// errWindows wraps errors.ErrUnsupported.
var errWindows = fmt.Errorf("%w on Windows", errors.ErrUnsupported)

// Enabled is false: Windows has no service manager that reads
// NOTIFY_SOCKET (Send still reports one that is set as unsupported). It
// looks nothing up: a lookup of the environment allocates on Windows, and
// a worker's shutdown begins without allocating.
func Enabled() bool { return false }

// A Sender sends datagrams to one notify socket; on Windows Open fails.
type Sender struct{ addr string }

// Open fails on Windows.
func Open(addr string) (*Sender, error) { return nil, errWindows }

// Send fails on Windows.
func (s *Sender) Send(msg []byte) error { return errWindows }

// Addr is the address the Sender sends to.
func (s *Sender) Addr() string { return s.addr }

// Close does nothing on Windows.
func (s *Sender) Close() error { return nil }

func send(addr, state string) error { return errWindows }

//go:build !unix

package listenfd

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
)

// Windows has no descriptors to hand down by number: every function
// returns an error wrapping errors.ErrUnsupported.

func Open(name, network, address string) (*Socket, error) { return nil, errWindows }

func (s *Socket) Close() error { return errWindows }

type Passed struct {
	Ignored string
}

func Parse() (*Passed, error)                               { return nil, errWindows }
func Adopt() (*Passed, error)                               { return nil, errWindows }
func (p *Passed) Names() []string                           { return nil }
func (p *Passed) File(name string) (*os.File, error)        { return nil, errWindows }
func (p *Passed) Socket(name string) (*Socket, error)       { return nil, errWindows }
func (p *Passed) Close()                                    {}
func File(name string) (*os.File, error)                    { return nil, errWindows }
func Receive() error                                        { return nil }
func Seal()                                                 {}
func Pass(*exec.Cmd, []*Socket, Receiver) (*Handoff, error) { return nil, errWindows }
func Shim()                                                 {}

func errnoErr(n uint32) error { return errWindows }

func Stream(f *os.File) (bool, error) { return false, errWindows }

// fileID is a Unix socket file's, which Windows has none of.
type fileID struct{}

const shimVar = "MULTIEXIT_LISTEN_EXEC"

// errWindows is what every function returns on Windows.
var errWindows = fmt.Errorf("listeners handed down in the systemd format: %w on Windows", errors.ErrUnsupported)

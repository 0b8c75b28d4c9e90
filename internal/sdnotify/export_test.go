//go:build unix

package sdnotify

// FD is s's socket, for the tests.
func FD(s *Sender) int { return s.fd }

//go:build !linux

package proctest

// exitedNow: there are no pidfds here, so Watch finds nothing to ask about.
func exitedNow(int) bool { return true }

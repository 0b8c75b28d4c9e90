//go:build !linux

package multiexit

// groupPinned: the group is killed after its leader was reaped (see
// waitExited).
const groupPinned = false

// waitExited cannot wait without reaping here: the group ID is not pinned.
func waitExited(pid int) bool { return false }

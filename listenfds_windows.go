package multiexit

// markCloseOnExec does nothing: Windows passes no LISTEN_FDS descriptors, and
// a child inherits only the handles its parent marks inheritable.
func markCloseOnExec(int) {}

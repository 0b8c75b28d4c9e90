package sdnotify

// monotonicUsec is never sent on Windows (Enabled is false).
func monotonicUsec() int64 { return 0 }

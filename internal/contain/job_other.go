//go:build !windows

package contain

import "log/slog"

// Job returns 0: job objects are Windows's (see contain_windows.go).
func Job(*slog.Logger) uintptr { return 0 }

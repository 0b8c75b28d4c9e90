//go:build !linux && !windows

package multiexit

import (
	"log/slog"
	"time"
)

func initContainment(time.Duration, *slog.Logger, bool) {}

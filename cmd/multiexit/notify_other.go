//go:build unix && !linux

package main

import (
	"log/slog"
	"time"
)

// relayNotify: systemd runs on Linux only.
func relayNotify(*slog.Logger, func() int) (string, error) { return "", nil }

func notifyStopping(time.Duration) {}

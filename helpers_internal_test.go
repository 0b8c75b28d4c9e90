package multiexit

import (
	"io"
	"log/slog"
	"runtime"
)

func runtimeGoexit() { runtime.Goexit() }

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

module github.com/multiexit/multiexit

go 1.26.0

require (
	github.com/google/go-cmp v0.7.0
	github.com/oklog/run v1.2.0
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.49.0
)

require github.com/coreos/go-systemd/v22 v22.7.0

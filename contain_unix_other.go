//go:build !linux && !windows

package multiexit

func initContainment(config) {}

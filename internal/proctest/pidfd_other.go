//go:build !linux

package proctest

func (p *Proc) noteAlive() {}

package main_test

// Where multiexit differs on purpose from the tools it replaces, the tests
// assert each tool's own behaviour: here, and in TestTiniSignals and
// TestDumbInitExitStatus (death by COMMAND's signal), TestTiniReaping (the
// guardian, a second child), TestCatatonitForwardsSignals (fault and
// job-control signals forwarded) and TestCatatonitDescriptors (inherited
// descriptors kept). The comparison table in docs/cli.md and -h say why.

import (
	"slices"
	"syscall"
	"testing"
)

// A Python caller reads COMMAND's death by SIGTERM as returncode -15
// under multiexit, as with COMMAND run bare (and under GNU timeout), where
// tini makes it 143 (exit 128+15). As PID 1 multiexit exits 143 too.
func TestDifferenceReturncode(t *testing.T) {
	t.Parallel()
	each(t, []tool{mx(), tini(), bare}, func(t *testing.T, tl tool) {
		argv := append([]string{"-c", `import subprocess, sys
print("returncode", subprocess.run(sys.argv[1:]).returncode, flush=True)`}, tl.command("sh", "-c", "kill $$")...)
		p := startProgram(t, nil, python(t), argv...)
		want := "returncode -15"
		if tl.name == "tini" {
			want = "returncode 143"
		}
		if got := p.WaitFor("returncode "); got != want {
			t.Errorf("the Python caller says %q, want %q", got, want)
		}
		p.check("exit 0")
	})
}

// GNU timeout handles SIGTERM, SIGINT, SIGHUP, SIGQUIT and SIGALRM itself,
// and so runs COMMAND with them at their defaults even if its caller
// ignored them; multiexit keeps them ignored for COMMAND, as tini and
// dumb-init do (a nohup'd or background caller meant it).
func TestDifferenceIgnoredStayIgnored(t *testing.T) {
	t.Parallel()
	sigs := []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT}
	each(t, []tool{mx(), {name: "timeout", argv: []string{"timeout", "10"}}}, func(t *testing.T, tl tool) {
		if tl.isMultiexit() {
			needCgo(t)
		}
		ignored, _ := commandSignals(t, tl, sigs, nil)
		for _, sig := range sigs {
			if got, want := slices.Contains(ignored, sig), tl.isMultiexit(); got != want {
				t.Errorf("under %s COMMAND ignores %s: %v, want %v", tl.name, signalName(sig), got, want)
			}
		}
	})
}

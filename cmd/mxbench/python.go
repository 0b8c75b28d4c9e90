//go:build linux

package main

// Python's multiexit (https://pypi.org/project/multiexit/, the library this
// one ports) doing the same pool's job, measured in turns with the two Go
// pools when -python names an interpreter that imports it.

import (
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// pyPool is the Python pool: multiexit.install() in the parent, N children
// forked by multiprocessing, each of which registers the hook that appends
// its two lines and writes its ready line; the parent's hook terminates
// and joins them, as the package's own example does. SIGUSR1 answers the
// driver's memory question with zeros (there is no Go heap to report).
const pyPool = `
import multiprocessing, os, signal
import multiexit

def child():
    pid = str(os.getpid())
    def stop():
        fd = os.open(os.environ["MXBENCH_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(fd, ("stopping " + pid + "\n").encode())
        os.write(fd, ("stopped " + pid + "\n").encode())
        os.close(fd)
    multiexit.register(stop)
    os.write(1, ("ready " + pid + "\n").encode())
    while True:
        signal.pause()

if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    multiexit.install()
    signal.signal(signal.SIGUSR1, lambda *_: os.write(1, b"mem 0 0\n"))
    procs = [multiprocessing.Process(target=child) for _ in range(int(os.environ["MXBENCH_N"]))]
    for p in procs:
        p.start()
    def stop_all():
        for p in procs:
            p.terminate()
        for p in procs:
            p.join()
    multiexit.register(stop_all)
    while True:
        signal.pause()
`

// pythonRole is the python pool's role name; its parent is the
// interpreter, not this binary.
const pythonRole = "python-parent"

// pythonCmd is the command of the Python pool's parent.
func pythonCmd(python string) *exec.Cmd { return exec.Command(python, "-c", pyPool) }

// checkPython reports why python cannot run the Python pool, if it cannot.
func checkPython(python string) error {
	out, err := exec.Command(python, "-c", "import multiexit; print(multiexit.__version__)").CombinedOutput()
	if err != nil {
		return fmt.Errorf("-python %s: cannot import multiexit (pip install multiexit==1.5.0, or PYTHONPATH): %v: %s", python, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// reportPython compares the Python pool with multiexit's, per N.
func reportPython(w io.Writer, sizes []int, res map[string]map[int][]sample) {
	py, mx := res["python"], res["multiexit"]
	fmt.Fprintf(w, "\nPython's multiexit (the same pool: multiprocessing children, hooks by multiexit.register), medians in ms; ratio = Python/multiexit, so above 1 is multiexit faster.\n\n")
	fmt.Fprintln(w, "| N | phase | Python multiexit | multiexit | ratio |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|")
	var verdicts []string
	for _, n := range sizes {
		for _, ph := range phases {
			p, m := durations(py[n], ph.get), durations(mx[n], ph.get)
			ratio := median(p) / median(m)
			fmt.Fprintf(w, "| %d | %s | %s | %s | %.2f |\n", n, ph.name, spread(p), spread(m), ratio)
			if ph.name == phases[1].name {
				verdicts = append(verdicts, fmt.Sprintf("stop at N=%d: multiexit %.2fx faster than Python's multiexit (target ≥ %.1fx): %s", n, ratio, pythonStopTarget, verdict(ratio >= pythonStopTarget)))
			}
		}
	}
	fmt.Fprintln(w, "\nTargets against Python:")
	for _, v := range verdicts {
		fmt.Fprintln(w, "- "+v)
	}
}

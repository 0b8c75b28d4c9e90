package examples_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiexit/multiexit/internal/procfs"
	"github.com/multiexit/multiexit/internal/proctest"
)

// BenchmarkPreforkRestart prices a supervised restart in prefork, with 1,
// 4 and 64 workers: from the "crashing" answer of GET /crash to the first
// answer of the restarted worker (a new PID) to GET /, each on a new
// connection; requests sent meanwhile wait in the socket's queue or are
// served by the other workers. One crash per prefork (the first restart
// comes without backoff); starting and stopping prefork is not timed.
func BenchmarkPreforkRestart(b *testing.B) {
	for _, n := range []int{1, 4, 64} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			var total time.Duration
			var polls int
			b.StopTimer()
			for range b.N {
				p := proctest.Start(b, exec.Command(filepath.Join(bin, "prefork"), "-addr", "127.0.0.1:0", "-workers", fmt.Sprint(n)),
					proctest.Options{Limit: 5 * time.Minute})
				base := "http://" + strings.TrimPrefix(p.WaitFor("listening on "), "listening on ")
				// Every process prefork started (it listens once every
				// worker acknowledged): its workers and its guardian.
				// An answer from a PID not among them is the restarted
				// worker's.
				before := map[string]bool{}
				for _, pid := range procfs.Children(p.Cmd.Process.Pid) {
					before[strconv.Itoa(pid)] = true
				}
				code, body, err := get(base + "/crash")
				t0 := time.Now()
				if err != nil || code != 200 || body != "crashing" {
					b.Fatalf("GET /crash: %d %q %v", code, body, err)
				}
				for {
					polls++
					code, body, err := get(base + "/")
					m := preforkBody.FindStringSubmatch(body)
					if err != nil || code != 200 || m == nil {
						b.Fatalf("GET / after the crash: %d %q %v", code, body, err)
					}
					if !before[m[1]] {
						break
					}
				}
				total += time.Since(t0)
				p.Signal(syscall.SIGTERM)
				p.End()
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/restart")
			b.ReportMetric(float64(polls)/float64(b.N), "requests/restart")
		})
	}
}

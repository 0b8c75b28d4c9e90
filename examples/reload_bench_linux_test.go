package examples_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/multiexit/multiexit/internal/proctest"
)

// BenchmarkPreforkReload measures a reload of prefork with 4 and 64
// workers: the time from SIGHUP to "reload done" (the old generation
// gone, reaped), and the latency of GET / (a new connection each,
// 4 clients) while a reload runs against the steady state between reloads,
// p50 and p99 (docs/performance.md).
func BenchmarkPreforkReload(b *testing.B) {
	for _, n := range []int{4, 64} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			p := proctest.Start(b, exec.Command(filepath.Join(bin, "prefork"), "-addr", "127.0.0.1:0", "-workers", fmt.Sprint(n)),
				proctest.Options{Limit: 30 * time.Minute})
			base := "http://" + strings.TrimPrefix(p.WaitFor("listening on "), "listening on ")
			var reloading atomic.Bool
			var mu sync.Mutex
			more := sync.NewCond(&mu) // a steady sample came
			var steady, during []time.Duration
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						in := reloading.Load()
						t0 := time.Now()
						code, _, err := get(base + "/")
						d := time.Since(t0)
						if err != nil || code != 200 {
							b.Errorf("GET /: %d %v", code, err)
							return
						}
						mu.Lock()
						if in || reloading.Load() {
							during = append(during, d)
						} else {
							steady = append(steady, d)
							more.Broadcast()
						}
						mu.Unlock()
					}
				})
			}
			var total time.Duration
			b.ResetTimer()
			b.StopTimer() // only the reloads are timed (total)
			for i := range b.N {
				// 200 steady requests between reloads.
				mu.Lock()
				for len(steady) < 200*(i+1) {
					more.Wait()
				}
				mu.Unlock()
				reloading.Store(true)
				t0 := time.Now()
				p.Signal(syscall.SIGHUP)
				p.WaitFor("reload done: ")
				total += time.Since(t0)
				reloading.Store(false)
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/reload")
			q := func(ds []time.Duration, f float64) float64 {
				if len(ds) == 0 {
					return 0
				}
				slices.Sort(ds)
				return float64(ds[min(len(ds)-1, int(f*float64(len(ds))))].Microseconds()) / 1000
			}
			b.ReportMetric(q(steady, .5), "steady-p50-ms")
			b.ReportMetric(q(steady, .99), "steady-p99-ms")
			b.ReportMetric(q(during, .5), "reload-p50-ms")
			b.ReportMetric(q(during, .99), "reload-p99-ms")
			b.ReportMetric(float64(len(during)), "reload-requests")
			p.Signal(syscall.SIGTERM)
			p.End()
		})
	}
}

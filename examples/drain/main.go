// Command drain is a web server that stops the way Kubernetes needs: after
// SIGTERM the pod's endpoints are removed from the load balancers only
// after a few seconds, and requests keep arriving meanwhile.
//
//	go run ./examples/drain -addr 127.0.0.1:8080 -drain 5s
//
// On SIGTERM (kubelet's stop) or Ctrl-C:
//  1. multiexit.Stopping() is closed at once: /readyz answers 503, so the
//     readiness probe fails and the endpoints controller takes the pod out;
//  2. / keeps serving for the drain delay (multiexit.WithDrain);
//  3. then Run's context is cancelled, main returns, and the exit hooks run
//     newest first: the server is shut down (requests in flight finish),
//     then the database is closed;
//  4. the process ends by SIGTERM (exit 143 as a container's PID 1).
//
// The whole stop fits the shutdown deadline (WithTimeout), which includes
// the drain: set the pod's terminationGracePeriodSeconds above it.
//
//	readinessProbe: {httpGet: {path: /readyz, port: 8080}, periodSeconds: 1}
//	terminationGracePeriodSeconds: 30   # > -timeout (20s), which includes -drain
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/multiexit/multiexit"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	drain := flag.Duration("drain", 5*time.Second, "how long to serve on after SIGTERM")
	timeout := flag.Duration("timeout", 20*time.Second, "the whole stop, drain included")
	flag.Parse()

	// Registered first, so it runs last: after the server has stopped.
	multiexit.Register(func(ctx context.Context) error {
		say("hook: close the database")
		return nil
	})
	multiexit.Run(func(ctx context.Context) error {
		return serve(ctx, *addr, *drain)
	}, multiexit.WithDrain(*drain), multiexit.WithTimeout(*timeout))
}

func serve(ctx context.Context, addr string, drain time.Duration) error {
	var served atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-multiexit.Stopping():
			http.Error(w, "stopping", http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ok")
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		fmt.Fprintf(w, "hello from pid %d\n", os.Getpid())
	})

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux}
	// The hook's context carries the shutdown deadline: Shutdown waits for
	// the requests in flight until then.
	multiexit.Register(func(ctx context.Context) error {
		say("hook: close the server (served %d requests)", served.Load())
		return srv.Shutdown(ctx)
	})
	failed := make(chan error, 1)
	go func() { failed <- srv.Serve(ln) }()
	say("listening on http://%s", ln.Addr())

	select {
	case <-multiexit.Stopping():
		say("stopping: /readyz fails from now on; / serves on for the drain delay (%v)", drain)
	case err := <-failed:
		return err
	}
	select {
	case <-ctx.Done(): // the drain delay has passed
		say("drain over: main returns, the exit hooks run")
		return nil
	case err := <-failed:
		return err
	}
}

// say prints one line in a single write.
func say(format string, args ...any) {
	os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n")
}

// Command prefork is a pre-forking HTTP server on multiexit: the parent
// opens the listening socket (or adopts the one systemd passed it) and
// starts N supervised workers, this binary re-executed, which serve HTTP on
// that one shared socket. A worker that crashes is started again in its
// place; a crash loop stops the whole tree in order and exits 1.
//
//	go run ./examples/prefork                       # 127.0.0.1:8080, 4 workers
//	go run ./examples/prefork -addr 127.0.0.1:0 -workers 8
//	go run ./examples/prefork -crash-on-start        # exits 1: the restart limit
//
// Once every worker has acknowledged it prints "listening on HOST:PORT"
// (the real port for ":0"). Its endpoints:
//
//	GET /           200 "pid=<worker pid> generation=<g>"
//	GET /slow?ms=N  200 after N milliseconds
//	GET /crash      200 "crashing" (Connection: close; the header
//	                Worker-Pid names the worker), then the worker
//	                stops accepting, answers the requests it is serving,
//	                and exits 1 without its hooks, as a crash does; it is
//	                restarted
//
// SIGHUP reloads without dropping a request (multiexit.Reload): a new
// generation of workers, g+1, is started from the binary on disk now (a
// deploy may have replaced it), on the same socket; once every new worker
// is up the parent prints "reloaded: generation <g+1>", and the old
// generation stops in order, each worker finishing the requests it is
// serving first; then "reload done: generation <g+1>, the old one stopped". A new generation that fails to start is stopped, and the
// old one serves on: the parent prints "reload failed: <why>". Under systemd, a
// Type=notify-reload unit's systemctl reload does the same, and returns
// once the old generation is gone.
//
// SIGTERM (or Ctrl-C) stops it in order: each worker finishes the requests
// it is serving and runs its hooks (the last prints "worker <pid>
// generation <g>: hooks done"), then the parent's run; it dies by the
// signal.
//
// Under systemd, a .socket unit with FileDescriptorName=http passes the
// socket instead (Listen adopts it), and Type=notify works: Run tells
// systemd READY=1 once the workers are up.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multiexit/multiexit"
	"github.com/multiexit/multiexit/listen"
)

// generation counts reloads, from 1 (see the package documentation).
var generation = multiexit.Generation()

// crashing: GET /crash was served; the worker is about to exit 1.
var crashing atomic.Bool

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on (host:port; port 0 picks one)")
	workers := flag.Int("workers", 4, "number of workers")
	crashOnStart := flag.Bool("crash-on-start", false, "every worker exits 1 right after it started (shows the restart limit)")
	flag.Parse()
	if multiexit.IsChild() {
		worker(*crashOnStart)
		return
	}
	multiexit.Run(func(ctx context.Context) error {
		return parent(ctx, *addr, *workers, *crashOnStart)
	}, multiexit.WithGrace(10*time.Second), multiexit.WithTimeout(15*time.Second),
		// SIGHUP reloads: Run's default.
		multiexit.WithReloadEvents(func(e multiexit.ReloadEvent) {
			switch {
			case e.Err == nil && !e.Done:
				fmt.Printf("reloaded: generation %d\n", e.Generation)
			case e.Done:
				fmt.Printf("reload done: generation %d, the old one stopped\n", e.Generation)
			default:
				fmt.Printf("reload failed: %v\n", e.Err)
			}
		}))
}

func parent(ctx context.Context, addr string, n int, crashOnStart bool) error {
	if n < 1 {
		return fmt.Errorf("prefork: -workers %d: at least one worker is needed", n)
	}
	real, err := multiexit.Listen("http", "tcp", addr)
	if err != nil {
		return err
	}
	args := []string{}
	if crashOnStart {
		args = append(args, "-crash-on-start")
	}
	var pool []*exec.Cmd
	for range n {
		pool = append(pool, multiexit.Supervise(multiexit.Command(args...), multiexit.Policy{}))
	}
	if _, err := multiexit.Start(pool...); err != nil { // returns once every worker called Run
		return err
	}
	fmt.Printf("listening on %s\n", real)
	if err := multiexit.Ready(); err != nil { // under systemd: READY=1
		return err
	}
	<-ctx.Done()
	return nil
}

// worker serves HTTP on the socket the parent handed down, until the
// shutdown; the server then finishes the requests in flight.
func worker(crashOnStart bool) {
	multiexit.Register(func(context.Context) error {
		fmt.Printf("worker %d generation %d: hooks done\n", os.Getpid(), generation)
		return nil
	})
	multiexit.Run(func(ctx context.Context) error {
		if crashOnStart {
			os.Exit(1)
		}
		ln, err := listen.Listener("http")
		if err != nil {
			return err
		}
		srv := newServer(ln)
		done := make(chan error, 1)
		go func() {
			err := srv.Serve(ln)
			close(srv.served)
			done <- err
		}()
		select {
		case err := <-done:
			if crashing.Load() {
				select {} // the crash ends the process, without the hooks
			}
			return err
		case <-ctx.Done():
		}
		drain, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.drain(drain)
	})
}

// server is an HTTP server that stops without dropping a request: it
// stops accepting, serves every connection it accepted to its end, and
// only then shuts down. (http.Server.Shutdown alone closes, unanswered, a
// connection accepted just before it whose request it reads after it
// began: the client gets EOF.)
type server struct {
	http.Server
	ln     net.Listener
	served chan struct{} // closed when Serve has returned
	mu     sync.Mutex
	cond   *sync.Cond
	busy   map[net.Conn]bool // connections accepted and not idle, closed or hijacked
	// hijacked: answers being written on hijacked connections (GET
	// /crash), which left busy at the hijack.
	hijacked int
}

func newServer(ln net.Listener) *server {
	s := &server{ln: ln, served: make(chan struct{}), busy: map[net.Conn]bool{}}
	s.cond = sync.NewCond(&s.mu)
	s.Handler = handler(s)
	s.ConnState = func(c net.Conn, st http.ConnState) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if st == http.StateNew || st == http.StateActive {
			s.busy[c] = true
		} else {
			delete(s.busy, c)
			s.cond.Broadcast()
		}
	}
	return s
}

// drain stops accepting, waits for the connections being served (each
// answered with Connection: close), then shuts the server down, closing
// the idle ones; ctx bounds the wait. The connections stay in the shared
// socket's queue for the other workers (or the next generation).
func (s *server) drain(ctx context.Context) error {
	s.SetKeepAlivesEnabled(false)
	s.ln.Close()
	// A connection Accept returned just before the Close is counted busy
	// once Serve has seen it: Serve returns only after that.
	select {
	case <-s.served:
	case <-ctx.Done():
	}
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	for (len(s.busy) > 0 || s.hijacked > 0) && ctx.Err() == nil {
		s.cond.Wait()
	}
	s.mu.Unlock()
	return s.Shutdown(ctx)
}

func handler(srv *server) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "pid=%d generation=%d", os.Getpid(), generation)
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		if err != nil || ms < 0 {
			http.Error(w, "ms: a number of milliseconds", http.StatusBadRequest)
			return
		}
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprintf(w, "pid=%d generation=%d slept=%dms", os.Getpid(), generation, ms)
	})
	mux.HandleFunc("GET /crash", func(w http.ResponseWriter, r *http.Request) {
		// The answer goes out whole before the crash: written on the
		// hijacked connection, which is then closed. Counted, so that a
		// drain (of an earlier /crash on this worker) waits for it.
		srv.mu.Lock()
		srv.hijacked++
		srv.mu.Unlock()
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err == nil {
			writeCrashing(buf)
			conn.Close()
		}
		srv.mu.Lock()
		srv.hijacked--
		srv.cond.Broadcast()
		srv.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		// The requests this worker is serving are answered first, and
		// it accepts no more: a demo's crash loses nothing; the socket's
		// queue waits for the other workers and the restarted one.
		crashing.Store(true)
		go func() {
			srv.drain(context.Background())
			os.Exit(1) // without the hooks, as a crash
		}()
	})
	return mux
}

func writeCrashing(w *bufio.ReadWriter) {
	const body = "crashing"
	fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\nWorker-Pid: %d\r\n\r\n%s", len(body), os.Getpid(), body)
	w.Flush()
}

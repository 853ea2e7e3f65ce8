package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// runBackend serves the VIP on one backend node. Besides answering normally
// it can misbehave in the ways the lab's scenarios need; every misbehaviour
// is logged to the node's own event log (side evidence only: the lab's truth
// is derived from the captures, not from these lines).
func runBackend(args []string) {
	fs := flag.NewFlagSet("backend", flag.ExitOnError)
	listen := fs.String("listen", ":80", "listen address")
	node := fs.String("node", "backend-01", "node name (goes into responses)")
	idle := fs.Duration("idle-timeout", 120*time.Second, "http.Server.IdleTimeout (keep-alive idle close)")
	keepalive := fs.Bool("keepalive", true, "keep-alive enabled")
	resetPermille := fs.Int("reset-permille", 0, "abort this many requests per 1000 mid-request (Hijack + SO_LINGER 0 close = RST)")
	resetMinBody := fs.Int64("reset-min-body", 4000, "only abort requests whose Content-Length is at least this (so the request is still arriving)")
	slowPermille := fs.Int("slow-permille", 0, "delay this many responses per 1000")
	slowDelay := fs.Duration("slow-delay", 3*time.Second, "delay of a slow response")
	stopAfter := fs.Duration("stop-after", 0, "close the listener and all connections after this long (port closed => refused)")
	respSize := fs.Int("response-size", 1000, "response body bytes")
	maxRequests := fs.Int("max-requests", 0, "close a keep-alive connection after this many responses, without `Connection: close` (like keepalive_requests/max_requests done wrong)")
	maxReqDelay := fs.Duration("max-requests-close-delay", 20*time.Millisecond, "max-requests: the worker closes the connection this long after its last response (requests arriving meanwhile stay unread)")
	backlog := fs.Int("backlog", 0, "listen(2) backlog (0: Go's default, net.core.somaxconn); net/http cannot set it, so a raw socket is used")
	acceptPauseEvery := fs.Duration("accept-pause-every", 0, "stop accepting for -accept-pause once per this period (0: never)")
	acceptPause := fs.Duration("accept-pause", 0, "how long each accept pause lasts")
	acceptDelay := fs.Duration("accept-delay", 0, "sleep this long before every accept (a slow accept loop)")
	evlog := fs.String("event-log", "", "file for this node's own event lines")
	seed := fs.Int64("seed", time.Now().UnixNano(), "random seed")
	_ = fs.Parse(args)

	rng := rand.New(rand.NewSource(*seed))
	var rngMu = make(chan struct{}, 1)
	roll := func(permille int) bool {
		if permille <= 0 {
			return false
		}
		rngMu <- struct{}{}
		v := rng.Intn(1000)
		<-rngMu
		return v < permille
	}
	lg := log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds)
	if *evlog != "" {
		f, err := os.OpenFile(*evlog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			log.Fatal(err)
		}
		lg.SetOutput(f)
	}
	pad := strings.Repeat("x", *respSize)
	var n int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := atomic.AddInt64(&n, 1)
		if *maxRequests > 0 {
			if cs, ok := r.Context().Value(connStateKey{}).(*connState); ok {
				cs.served++
				if cs.served >= *maxRequests {
					lastResponse(w, r, lg, *node, id, cs.served, *maxReqDelay, pad)
					return
				}
			}
		}
		if r.ContentLength >= *resetMinBody && roll(*resetPermille) {
			// Read a little of the body so the abort is genuinely mid-request.
			_, _ = io.CopyN(io.Discard, r.Body, 1024)
			hj, ok := w.(http.Hijacker)
			if !ok {
				http.Error(w, "no hijack", 500)
				return
			}
			c, _, err := hj.Hijack()
			if err != nil {
				lg.Printf("%s hijack failed: %v", *node, err)
				return
			}
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			lg.Printf("%s event=reset remote=%s content_length=%d", *node, r.RemoteAddr, r.ContentLength)
			_ = c.Close()
			return
		}
		got, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			lg.Printf("%s event=body_error remote=%s err=%v", *node, r.RemoteAddr, err)
			return
		}
		if roll(*slowPermille) {
			lg.Printf("%s event=slow remote=%s delay=%s", *node, r.RemoteAddr, *slowDelay)
			select {
			case <-time.After(*slowDelay):
			case <-r.Context().Done():
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "ok node=%s req=%d got=%d\n%s\n", *node, id, got, pad)
	})
	srv := &http.Server{Addr: *listen, Handler: h, IdleTimeout: *idle, ReadHeaderTimeout: 30 * time.Second,
		// Per-connection request counter for -max-requests (requests on one
		// connection are served one at a time, so no lock is needed).
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, connStateKey{}, &connState{})
		}}
	srv.SetKeepAlivesEnabled(*keepalive)
	if *stopAfter > 0 {
		go func() {
			time.Sleep(*stopAfter)
			lg.Printf("%s event=stop listener closed, port now refuses", *node)
			_ = srv.Close()
		}()
	}
	ln, err := listenTCP(*listen, *backlog)
	if err != nil {
		lg.Printf("%s event=exit err=%v", *node, err)
		log.Fatal(err)
	}
	if *acceptPauseEvery > 0 || *acceptDelay > 0 {
		ln = &stallingListener{Listener: ln, every: *acceptPauseEvery, pause: *acceptPause,
			delay: *acceptDelay, start: time.Now(), lg: lg, node: *node}
	}
	lg.Printf("%s event=start pid=%d listen=%s idle_timeout=%s keepalive=%v backlog=%d max_requests=%d accept_pause=%s/%s accept_delay=%s",
		*node, os.Getpid(), *listen, *idle, *keepalive, *backlog, *maxRequests, *acceptPause, *acceptPauseEvery, *acceptDelay)
	err = srv.Serve(ln)
	if err == http.ErrServerClosed {
		// Keep the process (and the node) alive with the port closed.
		<-context.Background().Done()
	}
	lg.Printf("%s event=exit err=%v", *node, err)
}

type connStateKey struct{}

// connState counts the requests served on one connection (-max-requests).
type connState struct{ served int }

// lastResponse answers the connection's last request the way a server with a
// request budget per connection does it wrong: a normal keep-alive response
// (no `Connection: close`), then the worker stops reading and closes the
// socket a moment later. A request the proxy sends in between stays unread
// (so the close becomes a RST); one sent after the close meets the FIN.
func lastResponse(w http.ResponseWriter, r *http.Request, lg *log.Logger, node string, id int64,
	served int, delay time.Duration, pad string) {
	got, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		lg.Printf("%s event=body_error remote=%s err=%v", node, r.RemoteAddr, err)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "no hijack", 500)
		return
	}
	c, bw, err := hj.Hijack()
	if err != nil {
		lg.Printf("%s hijack failed: %v", node, err)
		return
	}
	body := fmt.Sprintf("ok node=%s req=%d got=%d\n%s\n", node, id, got, pad)
	fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: %s\r\nContent-Length: %d\r\n\r\n%s",
		time.Now().UTC().Format(http.TimeFormat), len(body), body)
	if err := bw.Flush(); err != nil {
		lg.Printf("%s event=max_requests_write_error remote=%s err=%v", node, r.RemoteAddr, err)
	}
	lg.Printf("%s event=max_requests remote=%s served=%d close_in=%s", node, r.RemoteAddr, served, delay)
	time.Sleep(delay)
	_ = c.Close()
}

// listenTCP listens like net.Listen, except that a positive backlog is
// passed to listen(2) as is (net/http always uses somaxconn): a raw socket
// handed to net.FileListener.
func listenTCP(addr string, backlog int) (net.Listener, error) {
	if backlog <= 0 {
		return net.Listen("tcp", addr)
	}
	ta, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return nil, err
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("SO_REUSEADDR: %w", err)
	}
	sa := &syscall.SockaddrInet4{Port: ta.Port}
	if ip4 := ta.IP.To4(); ip4 != nil {
		copy(sa.Addr[:], ip4)
	}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("bind %s: %w", addr, err)
	}
	if err := syscall.Listen(fd, backlog); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("listen(backlog=%d): %w", backlog, err)
	}
	f := os.NewFile(uintptr(fd), "listener")
	defer f.Close() // FileListener dups the descriptor
	return net.FileListener(f)
}

// stallingListener is an accept loop that falls behind: it sleeps `delay`
// before every accept and stops accepting for `pause` once every `every`
// (a stop-the-world pause, a saturated worker pool). Connections the kernel
// completes meanwhile wait in the listen queue; once it is full the kernel
// drops what does not fit (see the accept-queue scenario).
type stallingListener struct {
	net.Listener
	every, pause, delay time.Duration
	start               time.Time
	lg                  *log.Logger
	node                string
	lastPause           int64
}

func (l *stallingListener) Accept() (net.Conn, error) {
	if l.delay > 0 {
		time.Sleep(l.delay)
	}
	dl, _ := l.Listener.(interface{ SetDeadline(time.Time) error })
	for {
		if l.every <= 0 || l.pause <= 0 || dl == nil {
			return l.Listener.Accept()
		}
		el := time.Since(l.start)
		k := int64(el / l.every)
		if k > 0 && el-time.Duration(k)*l.every < l.pause {
			end := l.start.Add(time.Duration(k)*l.every + l.pause)
			if k != l.lastPause {
				l.lastPause = k
				l.lg.Printf("%s event=accept_pause until=%s", l.node, end.UTC().Format("15:04:05.000"))
			}
			time.Sleep(time.Until(end))
			continue
		}
		// A blocked accept must not run into the next pause: it would take
		// one connection off the queue during it.
		_ = dl.SetDeadline(l.start.Add(time.Duration(k+1) * l.every))
		c, err := l.Listener.Accept()
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			continue
		}
		_ = dl.SetDeadline(time.Time{})
		return c, err
	}
}

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
	srv := &http.Server{Addr: *listen, Handler: h, IdleTimeout: *idle, ReadHeaderTimeout: 30 * time.Second}
	srv.SetKeepAlivesEnabled(*keepalive)
	if *stopAfter > 0 {
		go func() {
			time.Sleep(*stopAfter)
			lg.Printf("%s event=stop listener closed, port now refuses", *node)
			_ = srv.Close()
		}()
	}
	lg.Printf("%s event=start listen=%s idle_timeout=%s keepalive=%v", *node, *listen, *idle, *keepalive)
	err := srv.ListenAndServe()
	if err == http.ErrServerClosed {
		// Keep the process (and the node) alive with the port closed.
		<-context.Background().Done()
	}
	lg.Printf("%s event=exit err=%v", *node, err)
}

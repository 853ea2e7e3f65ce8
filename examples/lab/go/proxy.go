package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// newProxyTransport is the seed's transport, verbatim (the seed's dial
// timeout is 10 s; the syn-drop scenario shortens it so a short run shows
// dial timeouts): KeepAlive (100 s) longer than IdleConnTimeout (90 s), a
// large idle pool.
func newProxyTransport(dialTimeout time.Duration) *http.Transport {
	return &http.Transport{
		DialContext: (&net.Dialer{
			Timeout:   dialTimeout,
			KeepAlive: 100 * time.Second,
		}).DialContext,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   4096,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
	}
}

func runProxy(args []string) {
	fs := flag.NewFlagSet("proxy", flag.ExitOnError)
	listen := fs.String("listen", ":8080", "address to serve clients on")
	backend := fs.String("backend", "http://198.18.10.10:80", "upstream (the VIP)")
	logText := fs.String("log", "proxy.log", "journald-style text log")
	logJSON := fs.String("ndjson", "proxy.ndjson", "Filebeat-shaped documents")
	logPath := fs.String("log-file-path", "/var/log/proxy/proxy.log", "log.file.path in the documents")
	host := fs.String("hostname", "proxyhost", "host name in the journald prefix")
	rht := fs.Duration("response-header-timeout", 0, "Transport.ResponseHeaderTimeout (0 = none, as in the seed)")
	dialTimeout := fs.Duration("dial-timeout", 10*time.Second, "net.Dialer.Timeout (the seed's is 10 s)")
	stats := fs.Duration("stats-every", 5*time.Second, "interval of the proxy's own stats line (noise lines, as real logs have)")
	_ = fs.Parse(args)

	text, err := os.OpenFile(*logText, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	nd, err := os.OpenFile(*logJSON, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	jw := &journalWriter{host: *host, ident: "proxy", pid: os.Getpid(), text: text, ndjson: nd, logPath: *logPath}
	// Go's standard logger, default flags (2006/01/02 15:04:05, local time:
	// the lab runs the proxy with TZ=UTC).
	log.SetOutput(jw)

	target, err := url.Parse(*backend)
	if err != nil {
		log.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	tr := newProxyTransport(*dialTimeout)
	tr.ResponseHeaderTimeout = *rht
	rp.Transport = tr

	var served, failed int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: 200}
		rp.ServeHTTP(sw, r)
		atomic.AddInt64(&served, 1)
		if sw.code == http.StatusBadGateway || sw.code == http.StatusGatewayTimeout {
			atomic.AddInt64(&failed, 1)
		}
	})
	srv := &http.Server{Addr: *listen, Handler: h}
	log.Printf("proxy starting: listen=%s upstream=%s idle_conn_timeout=%s keepalive=%s response_header_timeout=%s dial_timeout=%s go=%s",
		*listen, *backend, tr.IdleConnTimeout, 100*time.Second, tr.ResponseHeaderTimeout, *dialTimeout, runtime.Version())
	go func() {
		t := time.NewTicker(*stats)
		for range t.C {
			log.Printf("stats: requests=%d bad_gateway=%d", atomic.LoadInt64(&served), atomic.LoadInt64(&failed))
		}
	}()
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
		<-c
		log.Printf("proxy stopping: requests=%d bad_gateway=%d", atomic.LoadInt64(&served), atomic.LoadInt64(&failed))
		os.Exit(0)
	}()
	if err := srv.ListenAndServe(); err != nil {
		log.Fatal(err)
	}
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(c int) {
	s.code = c
	s.ResponseWriter.WriteHeader(c)
}

package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net/http"
	"os"
	"sync"
	"time"
)

// runLoadgen POSTs bodies of mixed sizes (log-uniform between -min-body and
// -max-body, so several TCP segments at MTU 1500) through the proxy, from
// -workers sequential workers. Each worker pauses between its requests: a
// random gap in [-gap-min, -gap-max] (the idle-race scenario sets the gap
// near the backend's idle timeout).
func runLoadgen(args []string) {
	fs := flag.NewFlagSet("loadgen", flag.ExitOnError)
	target := fs.String("url", "http://198.18.1.1:8080/upload", "proxy URL")
	workers := fs.Int("workers", 4, "concurrent sequential workers")
	duration := fs.Duration("duration", 30*time.Second, "how long to send")
	gapMin := fs.Duration("gap-min", 500*time.Millisecond, "min pause between a worker's requests")
	gapMax := fs.Duration("gap-max", 1000*time.Millisecond, "max pause between a worker's requests")
	minBody := fs.Int("min-body", 100, "smallest body")
	maxBody := fs.Int("max-body", 20000, "largest body")
	timeout := fs.Duration("timeout", 30*time.Second, "client gives up after this long (client-cancel)")
	summary := fs.String("summary", "", "write a JSON summary here")
	seed := fs.Int64("seed", time.Now().UnixNano(), "random seed")
	burstMin := fs.Duration("burst-period-min", 0, "burst mode: all workers send together, bursts this far apart at least")
	burstMax := fs.Duration("burst-period-max", 0, "burst mode: ... and at most (idle-race: just above the backend idle timeout)")
	pulsePeriod := fs.Duration("pulse-period", 0, "pulse mode: workers beyond -pulse-base-workers send only during the first -pulse-on of every period")
	pulseOn := fs.Duration("pulse-on", 0, "pulse mode: length of the busy part of each period")
	pulseBase := fs.Int("pulse-base-workers", 1, "pulse mode: workers that send all the time")
	_ = fs.Parse(args)

	tr := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 300 * time.Second}
	cl := &http.Client{Transport: tr, Timeout: *timeout}
	var mu sync.Mutex
	codes := map[string]int{}
	var total, bytesSent int
	start := time.Now()
	deadline := start.Add(*duration)
	// Pulse mode: the proxy's pool grows during each busy phase; in the quiet
	// phase only the base workers send and they keep reusing the same few
	// pooled connections (Go's idle pool is LIFO), so the others sit idle for
	// about period - on.
	pulseWait := func(w int) {
		if *pulsePeriod <= 0 || w < *pulseBase {
			return
		}
		el := time.Since(start) % *pulsePeriod
		if el >= *pulseOn {
			time.Sleep(*pulsePeriod - el)
		}
	}
	// Burst mode: a coordinator opens a new "tick" channel for every burst;
	// each worker sends one request per burst. All workers sending at once
	// makes the proxy use one pooled connection per worker, each idle for
	// about one burst period between uses (the idle-race needs exactly that).
	var tickMu sync.Mutex
	tick := make(chan struct{})
	if *burstMin > 0 {
		go func() {
			rng := rand.New(rand.NewSource(*seed - 1))
			for time.Now().Before(deadline) {
				tickMu.Lock()
				close(tick)
				tick = make(chan struct{})
				tickMu.Unlock()
				p := *burstMin
				if *burstMax > *burstMin {
					p += time.Duration(rng.Int63n(int64(*burstMax - *burstMin)))
				}
				time.Sleep(p)
			}
			// Release the waiting workers for good: they see the deadline and stop.
			tickMu.Lock()
			close(tick)
			tickMu.Unlock()
		}()
	}
	waitTick := func() {
		tickMu.Lock()
		t := tick
		tickMu.Unlock()
		<-t
	}
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(*seed + int64(w)*7919))
			if *burstMin == 0 && (*pulsePeriod <= 0 || w < *pulseBase) {
				// Stagger the workers (pulse workers start together).
				time.Sleep(time.Duration(rng.Int63n(int64(*gapMax) + 1)))
			}
			for i := 0; time.Now().Before(deadline); i++ {
				if *burstMin > 0 {
					waitTick()
					if !time.Now().Before(deadline) {
						break
					}
				}
				pulseWait(w)
				if !time.Now().Before(deadline) {
					break
				}
				lo, hi := math.Log(float64(*minBody)), math.Log(float64(*maxBody))
				size := int(math.Exp(lo + rng.Float64()*(hi-lo)))
				body := bytes.Repeat([]byte{'a' + byte(w%26)}, size)
				url := fmt.Sprintf("%s/w%d/r%d", *target, w, i)
				resp, err := cl.Post(url, "application/octet-stream", bytes.NewReader(body))
				key := ""
				if err != nil {
					key = "client_error"
				} else {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					key = fmt.Sprint(resp.StatusCode)
				}
				mu.Lock()
				codes[key]++
				total++
				bytesSent += size
				mu.Unlock()
				if *burstMin > 0 {
					continue
				}
				gap := *gapMin
				if *gapMax > *gapMin {
					gap += time.Duration(rng.Int63n(int64(*gapMax - *gapMin)))
				}
				time.Sleep(gap)
			}
		}(w)
	}
	wg.Wait()
	out, _ := json.MarshalIndent(map[string]interface{}{
		"requests": total, "body_bytes": bytesSent, "by_status": codes,
		"workers": *workers, "duration_s": duration.Seconds(),
	}, "", "  ")
	fmt.Println(string(out))
	if *summary != "" {
		_ = os.WriteFile(*summary, append(out, '\n'), 0o644)
	}
}

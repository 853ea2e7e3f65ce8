package main

import (
	"bytes"
	"encoding/json"
	"os"
	"sync"
	"time"
)

// journalWriter turns what Go's standard `log` writes into what an operator
// finds on the proxy host: `journalctl`-style text lines
//
//	May 05 17:33:07 proxyhost proxy[812]: 2023/05/05 17:33:07 http: proxy error: ...
//
// and the same lines as the documents Filebeat would ship for that file.
// The prefix is stamped from the real clock (UTC, like the process's TZ) and
// the real pid when the line is written, as journald does on receipt.
type journalWriter struct {
	mu      sync.Mutex
	host    string
	ident   string
	pid     int
	text    *os.File
	ndjson  *os.File
	logPath string // what Filebeat would report as log.file.path
}

type filebeatDoc struct {
	Timestamp string `json:"@timestamp"`
	Message   string `json:"message"`
	Host      struct {
		Name string `json:"name"`
	} `json:"host"`
	Log struct {
		File struct {
			Path string `json:"path"`
		} `json:"file"`
		Offset int64 `json:"offset"`
	} `json:"log"`
	Process struct {
		Name string `json:"name"`
		Pid  int    `json:"pid"`
	} `json:"process"`
	Agent struct {
		Type    string `json:"type"`
		Version string `json:"version"`
	} `json:"agent"`
	Ecs struct {
		Version string `json:"version"`
	} `json:"ecs"`
	Input struct {
		Type string `json:"type"`
	} `json:"input"`
}

func (w *journalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now().UTC()
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		full := now.Format("Jan 02 15:04:05") + " " + w.host + " " + w.ident + "[" + itoa(w.pid) + "]: " + string(line)
		off, _ := w.text.Seek(0, 1)
		if _, err := w.text.WriteString(full + "\n"); err != nil {
			return 0, err
		}
		var d filebeatDoc
		d.Timestamp = now.Format("2006-01-02T15:04:05.000Z")
		d.Message = full
		d.Host.Name = w.host
		d.Log.File.Path = w.logPath
		d.Log.Offset = off
		d.Process.Name = w.ident
		d.Process.Pid = w.pid
		d.Agent.Type = "filebeat"
		d.Agent.Version = "8.7.1"
		d.Ecs.Version = "8.0.0"
		d.Input.Type = "log"
		b, err := json.Marshal(&d)
		if err != nil {
			return 0, err
		}
		if _, err := w.ndjson.Write(append(b, '\n')); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func itoa(i int) string {
	return string(appendInt(nil, i))
}

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

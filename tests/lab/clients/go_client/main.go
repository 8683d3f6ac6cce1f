// A Go HTTP/1.1 client on one pooled connection, built with CGO_ENABLED=0
// (a static binary that calls the kernel directly: no preload reaches it).
// Its dialer has KeepAlive: -1, so Go sets no keepalive option itself.
//
//	go_client URL IDLE_SECONDS PATH...
//
// Events on stdout, one JSON line each, like the lab's other clients.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"time"
)

func emit(event map[string]interface{}) {
	b, _ := json.Marshal(event)
	fmt.Println(string(b))
}

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: go_client URL IDLE_SECONDS PATH...")
		os.Exit(2)
	}
	base := os.Args[1]
	idle, _ := strconv.ParseFloat(os.Args[2], 64)
	dialer := &net.Dialer{KeepAlive: -1}
	client := &http.Client{Transport: &http.Transport{
		DialContext:       dialer.DialContext,
		MaxIdleConns:      1,
		IdleConnTimeout:   0,
		DisableKeepAlives: false,
	}}
	for i, path := range os.Args[3:] {
		n := i + 1
		if n > 1 {
			emit(map[string]interface{}{"event": "idle", "n": n - 1, "seconds": idle})
			time.Sleep(time.Duration(idle * float64(time.Second)))
		}
		emit(map[string]interface{}{"event": "sending", "n": n})
		port := 0
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
			port = info.Conn.LocalAddr().(*net.TCPAddr).Port
		}}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", base+path, nil)
		resp, err := client.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err != nil {
			emit(map[string]interface{}{"event": "error", "n": n, "exc_type": fmt.Sprintf("%T", err), "message": err.Error()})
			os.Exit(1)
		}
		emit(map[string]interface{}{"event": "response", "n": n, "status": resp.StatusCode, "local_port": port})
	}
	emit(map[string]interface{}{"event": "result", "outcome": "ok"})
}

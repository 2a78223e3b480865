//go:build pprof

package main

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
)

// A handoff built with -tags pprof (scripts/load-rate.sh -P) serves
// net/http/pprof on HANDOFF_PPROF_LISTEN (a loopback host:port) for
// profiling under load. Release builds have no such listener.
func init() {
	addr := os.Getenv("HANDOFF_PPROF_LISTEN")
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		slog.Error("pprof listen", "addr", addr, "err", err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() { _ = http.Serve(ln, mux) }()
}

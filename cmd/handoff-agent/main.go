// Command handoff-agent is the reference agent for Handoff's WebSocket
// agent link (docs/agent-protocol.md): it echoes the caller, collects DTMF
// digits and finishes the conversation on '#' (SYSTEM) or '0' (AGENT),
// like the built-in loopback agent, but as a separate service.
//
//	handoff-agent -listen 127.0.0.1:8090 -path /agent -greeting 2s
//
// Point Handoff at it with agent.mode: websocket and
// agent.url: ws://127.0.0.1:8090/agent. If HANDOFF_AGENT_TOKEN is set, the
// agent requires it as "Authorization: Bearer <token>" (Handoff's
// agent.token).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/handoff/handoff/agent/refagent"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "handoff-agent:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("handoff-agent", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8090", "address to listen on (host:port)")
	path := fs.String("path", "/agent", "HTTP path of the WebSocket endpoint")
	greeting := fs.Duration("greeting", 0, "length of the greeting tone played when a call starts (0: none)")
	bargeIn := fs.Float64("barge-in-level", 1000, "RMS level of caller audio that interrupts the greeting")
	debug := fs.Bool("debug", false, "log every call")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	agent := refagent.New(refagent.Options{
		Greeting:     *greeting,
		BargeInLevel: *bargeIn,
		Token:        os.Getenv("HANDOFF_AGENT_TOKEN"),
		Logger:       log,
	})
	mux := http.NewServeMux()
	mux.Handle(*path, agent)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })

	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	log.Info("handoff-agent listening", "url", "ws://"+l.Addr().String()+*path, "greeting", greeting.String())

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx) // stops accepting; WebSocket sessions are hijacked
	agent.Close()            // ends the sessions (close 1001)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

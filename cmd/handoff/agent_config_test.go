package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/handoff/handoff/agent"
)

func TestAgentWebSocketConfig(t *testing.T) {
	token := writeFile(t, "agent-token", "tok-from-file\n")
	path := writeFile(t, "handoff.yaml", `
agent:
  mode: websocket
  url: wss://agent.example/ws
  token_file: `+token+`
  connect_timeout: 1500ms
  format: l16-16000
  fallback_transfer_type: SYSTEM
`)
	cfg, err := Load(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Agent.Token != "tok-from-file" {
		t.Fatalf("token %q", cfg.Agent.Token)
	}
	p, err := newPipeline(cfg.Agent, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ws, ok := p.(*agent.WebSocket)
	if !ok {
		t.Fatalf("pipeline %T", p)
	}
	if ws.URL != "wss://agent.example/ws" || ws.Token != "tok-from-file" || ws.ConnectTimeout != 1500*time.Millisecond ||
		ws.Format != agent.FormatL16Wide || ws.FallbackTransferType != "SYSTEM" || ws.MaxDuration != 5*time.Minute {
		t.Fatalf("pipeline %+v", ws)
	}
}

func TestAgentWebSocketConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"http url":    {"mode: websocket\n  url: http://agent.example/ws", "agent.url"},
		"no url":      {"mode: websocket", "agent.url"},
		"bad format":  {"mode: websocket\n  url: ws://a/ws\n  format: opus", "agent.format"},
		"no timeout":  {"mode: websocket\n  url: ws://a/ws\n  connect_timeout: 0s", "agent.connect_timeout"},
		"both tokens": {"mode: websocket\n  url: ws://a/ws\n  token: x\n  token_file: /nonexistent", "token_file"},
	} {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, "handoff.yaml", "agent:\n  "+tc.yaml+"\n")
			_, err := Load(path, noEnv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one about %s", err, tc.want)
			}
		})
	}
	// A password in the URL never appears in errors.
	path := writeFile(t, "handoff.yaml", "agent:\n  mode: websocket\n  url: http://user:pw@agent.example/ws\n")
	if _, err := Load(path, noEnv); err == nil || strings.Contains(err.Error(), "pw@") {
		t.Fatalf("error %v", err)
	}
}

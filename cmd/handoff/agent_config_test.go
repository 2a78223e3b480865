package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/sip"
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
	p, err := newPipeline(cfg.Agent, nil, slog.New(slog.DiscardHandler), nil)
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
		t.Run(name, func(t *testing.T) { wantLoadError(t, "agent:\n  "+tc.yaml+"\n", tc.want) })
	}
	// A password in the URL never appears in errors.
	path := writeFile(t, "handoff.yaml", "agent:\n  mode: websocket\n  url: http://user:pw@agent.example/ws\n")
	if _, err := Load(path, noEnv); err == nil || strings.Contains(err.Error(), "pw@") {
		t.Fatalf("error %v", err)
	}
}

func TestAgentSIPConfig(t *testing.T) {
	pw := writeFile(t, "agent-pw", "s3cret-from-file\n")
	path := writeFile(t, "handoff.yaml", `
agent:
  mode: sip
  max_duration: 10m
  sip:
    uri: sip:proj_123@sip.api.openai.com
    transport: tls
    username: handoff
    password_file: `+pw+`
    srtp: required
    ring_timeout: 12s
    session_expires: 15m
    follow_refer: true
`)
	cfg, err := Load(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	leg, err := agentLegConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := sip.AgentLegConfig{URI: "sip:proj_123@sip.api.openai.com;transport=tls", Username: "handoff", Password: "s3cret-from-file",
		SRTP: sip.SRTPRequired, RingTimeout: 12 * time.Second, SessionExpires: 15 * time.Minute, MaxDuration: 10 * time.Minute,
		FallbackTransferType: agent.TransferAgent, FollowRefer: true}
	if leg == nil || *leg != want {
		t.Fatalf("agent leg %+v, want %+v", leg, want)
	}
	// The environment names every key, the password included.
	cfg, err = Load("", envMap(map[string]string{
		"HANDOFF_AGENT_MODE": "sip", "HANDOFF_AGENT_SIP_URI": "sip:+15105550100@abc.sip.livekit.cloud",
		"HANDOFF_AGENT_SIP_USERNAME": "lk", "HANDOFF_AGENT_SIP_PASSWORD": "pw",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if leg, _ := agentLegConfig(cfg); leg.URI != "sip:+15105550100@abc.sip.livekit.cloud" || leg.Password != "pw" ||
		leg.RingTimeout != sip.DefaultAgentRingTimeout || leg.SRTP != "" {
		t.Fatalf("agent leg from the environment %+v", leg)
	}
	if leg, err := agentLegConfig(Defaults()); leg != nil || err != nil {
		t.Fatalf("loopback mode has an agent leg: %+v %v", leg, err)
	}
}

func TestAgentSIPConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"no uri":        {"mode: sip", "agent.sip.uri"},
		"not sip":       {"mode: sip\n  sip:\n    uri: https://agent.example", "agent.sip.uri"},
		"transport":     {"mode: sip\n  sip:\n    uri: sip:a@b;transport=tcp\n    transport: tls", "contradicts"},
		"password only": {"mode: sip\n  sip:\n    uri: sip:a@b\n    password: x", "agent.sip.username"},
		"both pw":       {"mode: sip\n  sip:\n    uri: sip:a@b\n    username: u\n    password: x\n    password_file: /nonexistent", "password_file"},
		"srtp":          {"mode: sip\n  sip:\n    uri: sip:a@b\n    srtp: always", "agent.sip.srtp"},
		"short timer":   {"mode: sip\n  sip:\n    uri: sip:a@b\n    session_expires: 30s", "agent.sip.session_expires"},
		"ring timeout":  {"mode: sip\n  sip:\n    uri: sip:a@b\n    ring_timeout: 0s", "agent.sip.ring_timeout"},
		"twilio no ws":  {"twilio_api:\n    account_sid: AC1\n    auth_token: t", "agent.twilio_api.account_sid"},
		"twilio no tok": {"mode: websocket\n  url: ws://a/ws\n  twilio_api:\n    account_sid: AC1", "auth_token"},
		"twilio type":   {"mode: websocket\n  url: ws://a/ws\n  twilio_api:\n    account_sid: AC1\n    auth_token: t\n    transfer_type: \"\"", "agent.twilio_api.transfer_type"},
	} {
		t.Run(name, func(t *testing.T) { wantLoadError(t, "agent:\n  "+tc.yaml+"\n", tc.want) })
	}
}

func TestTwilioAPIConfig(t *testing.T) {
	tok := writeFile(t, "twilio-token", "tok-from-file\n")
	path := writeFile(t, "handoff.yaml", `
agent:
  mode: websocket
  url: ws://agent.example/ws
  twilio_api:
    account_sid: AC0123
    auth_token_file: `+tok+`
    transfer_type: AGENT
`)
	cfg, err := Load(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if tw := cfg.Agent.TwilioAPI; tw.AuthToken != "tok-from-file" || tw.AccountSID != "AC0123" || tw.TransferType != "AGENT" {
		t.Fatalf("twilio_api %+v", tw)
	}
	api, err := newTwilioAPI(cfg.Agent.TwilioAPI, slog.New(slog.DiscardHandler))
	if err != nil || api == nil {
		t.Fatalf("twilio api %v %v", api, err)
	}
	p, err := newPipeline(cfg.Agent, nil, slog.New(slog.DiscardHandler), api)
	if err != nil || p.(*agent.WebSocket).TwilioAPI != api {
		t.Fatalf("pipeline %+v %v", p, err)
	}
	if api, err := newTwilioAPI(Defaults().Agent.TwilioAPI, nil); api != nil || err != nil {
		t.Fatalf("unconfigured twilio api %v %v", api, err)
	}
}

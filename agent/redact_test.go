package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/handoff/handoff/internal/testenv"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"wss://bot:tok-user@agent.example/ws?token=tok-query&region=eu#tok-frag": "wss://agent.example/ws?token=REDACTED&region=REDACTED",
		"wss://tok-user@agent.example/ws?tok-bare":                               "wss://agent.example/ws?REDACTED",
		"redis://:tok-pass@10.0.0.5:6379/2":                                      "redis://10.0.0.5:6379/2",
		"ws://agent.example/ws?a=&&b=tok-b":                                      "ws://agent.example/ws?a=REDACTED&&b=REDACTED",
		"ws://agent.example/ws":                                                  "ws://agent.example/ws",
		"ws:tok-user:tok-opaque@agent.example":                                   "ws:REDACTED",
		"agent.example/ws?token=tok-noscheme":                                    "(invalid URL)",
		"ws://tok-bad%zz@agent.example":                                          "(invalid URL)",
		"":                                                                       "",
	} {
		got := RedactURL(in)
		if got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(got, "tok-") {
			t.Errorf("RedactURL(%q) = %q shows a secret", in, got)
		}
	}
}

// A token in agent.url's user info and query reaches neither the error of
// a failed Open nor a session's log lines.
func TestWebSocketURLRedactedInErrorsAndLogs(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t, false)) // nothing listens there
	w := &WebSocket{URL: "ws://bot:tok-user@" + addr + "/agent?token=tok-query", Logger: quiet, Metrics: NewMetrics(nil), ConnectTimeout: time.Second}
	_, err := w.Open(context.Background(), testInfo)
	if err == nil || strings.Contains(err.Error(), "tok-") || !strings.Contains(err.Error(), "token=REDACTED") {
		t.Fatalf("Open error %v", err)
	}

	a := newTestAgent(t, true)
	var logs bytes.Buffer
	w = a.pipeline(NewMetrics(nil))
	w.URL = strings.Replace(a.url(), "ws://", "ws://bot:tok-user@", 1) + "?token=tok-query"
	w.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, p, _ := openSession(t, a, w)
	_ = p.c.CloseNow() // the loss is logged with the session's attributes
	waitDone(t, s)
	s.Close()
	out := logs.String()
	if strings.Contains(out, "tok-") || !strings.Contains(out, "agent_url=") {
		t.Fatalf("logs show a secret or no agent_url:\n%s", out)
	}
}

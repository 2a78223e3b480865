package webhook_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/webhook"
)

// Every outcome is logged at debug level, yet neither the secret nor the
// URL's path and query (which may hold a receiver's token) reach the log
// or the metrics.
func TestNoSecretInLogsOrMetrics(t *testing.T) {
	clk := newFakeClock()
	rcv := newReceiver(t, secretA)
	rcv.strictTime = false
	statuses := []int{http.StatusOK, http.StatusServiceUnavailable, http.StatusGone, http.StatusFound}
	rcv.setRespond(func(n int, r *http.Request, w http.ResponseWriter) {
		answer(statuses[(n-1)%len(statuses)], "Location", "https://elsewhere.example.test/")(n, r, w)
	})
	ep := rcv.endpoint(t, secretA)
	var logs testenv.Buffer
	cfg := fastConfig()
	cfg.Clock, cfg.MaxAge = clk.Now, time.Hour
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := start(t, cfg, webhook.NewMemoryOutbox(), func(webhook.Event) *webhook.Endpoint { return ep })
	for i := range len(statuses) {
		h.enqueue(t, newEvent(t, webhook.TransferOngoing, "tr", "ivr", t0, i))
	}
	h.enqueue(t, newEvent(t, webhook.TransferCreated, "old", "ivr", t0.Add(-2*time.Hour), 0))
	eventually(t, "all outcomes", func() bool { return h.retries(t, "http_5xx") == 1 && rcv.count() == 2 })
	clk.Set(t0.Add(time.Minute))
	h.d.Notify()
	h.drained(t)

	var metrics bytes.Buffer
	mfs, _ := h.reg.Gather()
	for _, mf := range mfs {
		_ = expfmt.NewEncoder(&metrics, expfmt.NewFormat(expfmt.TypeTextPlain)).Encode(mf)
	}
	out := logs.String() + metrics.String()
	for _, leak := range []string{secretA[len("whsec_"):], "receiver-token", "/hooks/handoff"} {
		if strings.Contains(out, leak) {
			t.Errorf("%q appears in the logs or metrics:\n%s", leak, out)
		}
	}
	for _, want := range []string{"webhook delivered", "will retry", "not retried", "max age"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %q line in the log:\n%s", want, logs.String())
		}
	}
}

// The queue gauges read the outbox at scrape time.
func TestQueueGauges(t *testing.T) {
	clk := newFakeClock()
	ob := webhook.NewMemoryOutbox()
	cfg := fastConfig()
	cfg.Clock = clk.Now
	d, err := webhook.New(cfg, ob, func(webhook.Event) *webhook.Endpoint { return nil })
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{d: d, ob: ob, reg: newRegistry(t, d)}
	if depth, age := h.metric(t, "handoff_webhook_events_pending"), h.metric(t, "handoff_webhook_oldest_event_age_seconds"); depth != 0 || age != 0 {
		t.Errorf("empty: depth %v age %v", depth, age)
	}
	if err := ob.Enqueue(t.Context(), newEvent(t, webhook.TransferCreated, "a", "", t0.Add(-90*time.Second), 0),
		newEvent(t, webhook.TransferCreated, "b", "", t0.Add(-10*time.Second), 0)); err != nil {
		t.Fatal(err)
	}
	if depth, age := h.metric(t, "handoff_webhook_events_pending"), h.metric(t, "handoff_webhook_oldest_event_age_seconds"); depth != 2 || age != 90 {
		t.Errorf("depth %v age %v, want 2 and 90", depth, age)
	}
}

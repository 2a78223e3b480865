package webhook_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/handoff/handoff/webhook"
)

// answer replies with a status and optional headers.
func answer(status int, kv ...string) func(int, *http.Request, http.ResponseWriter) {
	return func(_ int, _ *http.Request, w http.ResponseWriter) {
		for i := 0; i+1 < len(kv); i += 2 {
			w.Header().Set(kv[i], kv[i+1])
		}
		w.WriteHeader(status)
	}
}

// 410 Gone ends the event as failed after one attempt, and the transfer's
// next event still goes.
func TestGoneIsNotRetried(t *testing.T) {
	rcv := newReceiver(t, secretA)
	rcv.setRespond(func(n int, r *http.Request, w http.ResponseWriter) {
		answer(map[bool]int{true: http.StatusGone, false: http.StatusOK}[n == 1])(n, r, w)
	})
	ep := rcv.endpoint(t, secretA)
	h := start(t, fastConfig(), webhook.NewMemoryOutbox(), func(webhook.Event) *webhook.Endpoint { return ep })
	h.enqueue(t, newEvent(t, webhook.TransferCreated, "tr", "ivr", time.Now(), 0), newEvent(t, webhook.TransferOngoing, "tr", "ivr", time.Now(), 1))
	h.drained(t)
	rs := rcv.requests()
	if len(rs) != 2 || rs[0].seq != 0 || rs[1].seq != 1 {
		t.Fatalf("requests %v, want seq 0 once (410) then seq 1", byTransfer(rs))
	}
	if f, d := h.deliveries(t, webhook.TransferCreated, webhook.ResultFailed), h.deliveries(t, webhook.TransferOngoing, webhook.ResultDelivered); f != 1 || d != 1 {
		t.Errorf("failed %v delivered %v, want 1 and 1", f, d)
	}
	for _, reason := range []string{"timeout", "connection", "http_408", "http_429", "http_5xx"} {
		if n := h.retries(t, reason); n != 0 {
			t.Errorf("retries{%s} = %v, want 0", reason, n)
		}
	}
}

// 503 and 429 with Retry-After (seconds or an HTTP date): the next attempt
// is scheduled no earlier than the endpoint asked, is not due a second
// before, and goes when the clock reaches it. The clock is fake: no timing.
func TestRetryAfterHonoured(t *testing.T) {
	for _, c := range []struct {
		name   string
		status int
		header string
		wait   time.Duration
	}{
		{"503 seconds", http.StatusServiceUnavailable, "120", 120 * time.Second},
		{"503 HTTP date", http.StatusServiceUnavailable, t0.Add(300 * time.Second).Format(http.TimeFormat), 300 * time.Second},
		{"429 seconds", http.StatusTooManyRequests, "7", 7 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) { retryAfterHonoured(t, c.status, c.header, c.wait) })
	}
}

func retryAfterHonoured(t *testing.T, status int, header string, wait time.Duration) {
	clk := newFakeClock()
	rcv := newReceiver(t, secretA)
	rcv.strictTime = false
	rcv.setRespond(func(n int, r *http.Request, w http.ResponseWriter) {
		if n == 1 {
			answer(status, "Retry-After", header)(n, r, w)
			return
		}
		answer(http.StatusOK)(n, r, w)
	})
	ep := rcv.endpoint(t, secretA)
	cfg := fastConfig()
	cfg.Clock = clk.Now
	h := start(t, cfg, webhook.NewMemoryOutbox(), func(webhook.Event) *webhook.Endpoint { return ep })
	h.enqueue(t, newEvent(t, webhook.TransferCompleted, "tr", "ivr", t0, 0))
	reason := map[int]string{503: "http_5xx", 429: "http_429"}[status]
	eventually(t, "the retry to be scheduled", func() bool { return h.retries(t, reason) == 1 })

	p := h.ob.Pending("tr")
	if len(p) != 1 || p[0].Attempt != 1 || p[0].LastError != "HTTP "+strconv.Itoa(status) || p[0].NextAttempt.Before(t0.Add(wait)) {
		t.Fatalf("pending %+v: want attempt 1, HTTP %d, next attempt at or after t0+%s", p, status, wait)
	}
	if ds, err := h.ob.Claim(t.Context(), "probe", t0.Add(wait-time.Second), time.Minute, 10); err != nil || len(ds) != 0 {
		t.Fatalf("a second before Retry-After the event is due: %v, %v", ds, err)
	}
	clk.Set(p[0].NextAttempt)
	h.d.Notify()
	h.drained(t)
	rs := rcv.requests()
	if len(rs) != 2 || rs[0].id != rs[1].id || string(rs[0].body) != string(rs[1].body) {
		t.Fatalf("%d requests; want 2 with one webhook-id and body", len(rs))
	}
	if gap := time.Duration(rs[1].ts-rs[0].ts) * time.Second; gap < wait {
		t.Errorf("webhook-timestamp advanced %s between attempts, want at least %s", gap, wait)
	}
	rcv.checkSigned(t)
}

// A 302 is the endpoint's answer: the Location is never requested and the
// event ends failed.
func TestRedirectNotFollowed(t *testing.T) {
	target := newReceiver(t, secretA)
	rcv := newReceiver(t, secretA)
	rcv.setRespond(answer(http.StatusFound, "Location", target.srv.URL+"/elsewhere"))
	ep := rcv.endpoint(t, secretA)
	h := start(t, fastConfig(), webhook.NewMemoryOutbox(), func(webhook.Event) *webhook.Endpoint { return ep })
	h.enqueue(t, newEvent(t, webhook.TransferCreated, "tr", "ivr", time.Now(), 0))
	h.drained(t)
	if rcv.count() != 1 || target.count() != 0 {
		t.Fatalf("endpoint got %d requests, redirect target %d; want 1 and 0", rcv.count(), target.count())
	}
	if got := h.deliveries(t, webhook.TransferCreated, webhook.ResultFailed); got != 1 {
		t.Errorf("failed = %v, want 1", got)
	}
}

// A receiver that does not answer within the timeout: the attempt is cut
// and retried, counted as a timeout.
func TestTimeoutRetried(t *testing.T) {
	clk := newFakeClock()
	rcv := newReceiver(t, secretA)
	rcv.strictTime = false
	rcv.setRespond(func(n int, r *http.Request, w http.ResponseWriter) {
		if n == 1 {
			<-r.Context().Done() // hang until Handoff gives up
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	ep := rcv.endpoint(t, secretA)
	cfg := fastConfig()
	cfg.Clock, cfg.Timeout = clk.Now, 50*time.Millisecond
	h := start(t, cfg, webhook.NewMemoryOutbox(), func(webhook.Event) *webhook.Endpoint { return ep })
	h.enqueue(t, newEvent(t, webhook.TransferCreated, "tr", "ivr", t0, 0))
	eventually(t, "a timeout retry", func() bool { return h.retries(t, "timeout") == 1 })
	if p := h.ob.Pending("tr"); len(p) != 1 || p[0].LastError != "timeout" {
		t.Fatalf("pending %+v, want the event with last error timeout", p)
	}
	clk.Set(t0.Add(time.Minute))
	h.d.Notify()
	h.drained(t)
	if rcv.count() != 2 {
		t.Errorf("%d requests, want 2", rcv.count())
	}
}

// Past max age an event is dropped: before any attempt when it is already
// too old, and instead of a retry that would fall after it.
func TestMaxAgeDrops(t *testing.T) {
	clk := newFakeClock()
	rcv := newReceiver(t, secretA)
	rcv.strictTime = false
	rcv.setRespond(answer(http.StatusServiceUnavailable, "Retry-After", "120"))
	ep := rcv.endpoint(t, secretA)
	cfg := fastConfig()
	cfg.Clock, cfg.MaxAge = clk.Now, time.Minute
	h := start(t, cfg, webhook.NewMemoryOutbox(), func(webhook.Event) *webhook.Endpoint { return ep })
	h.enqueue(t, newEvent(t, webhook.TransferCreated, "stale", "ivr", t0.Add(-time.Minute), 0))
	h.enqueue(t, newEvent(t, webhook.TransferOngoing, "young", "ivr", t0, 0))
	h.drained(t)
	rs := rcv.requests()
	if len(rs) != 1 || rs[0].transfer != "young" {
		t.Fatalf("requests %v, want one attempt of the young event only", byTransfer(rs))
	}
	if a, b := h.deliveries(t, webhook.TransferCreated, webhook.ResultExpired), h.deliveries(t, webhook.TransferOngoing, webhook.ResultExpired); a != 1 || b != 1 {
		t.Errorf("expired: created %v ongoing %v, want 1 and 1", a, b)
	}
}

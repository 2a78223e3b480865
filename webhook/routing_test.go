package webhook_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/webhook"
)

// Each credential's transfers go to its own endpoint only, signed with its
// own secret; headers-mode transfers go to the default endpoint; a
// credential without an endpoint gets nothing, not the default.
func TestEndpointsPerCredential(t *testing.T) {
	ra, rb, rdef := newReceiver(t, secretA), newReceiver(t, secretB), newReceiver(t, secretC)
	dir := &webhook.Directory{
		ByCredential: map[string]*webhook.Endpoint{"ivr-a": ra.endpoint(t, secretA), "ivr-b": rb.endpoint(t, secretB)},
		Default:      rdef.endpoint(t, secretC),
	}
	h := start(t, fastConfig(), webhook.NewMemoryOutbox(), dir.Resolve)
	for seq := range 3 {
		h.enqueue(t,
			newEvent(t, webhook.TransferOngoing, "from-a", "ivr-a", time.Now(), seq),
			newEvent(t, webhook.TransferOngoing, "from-b", "ivr-b", time.Now(), seq),
			newEvent(t, webhook.TransferOngoing, "from-c", "ivr-c", time.Now(), seq),
			newEvent(t, webhook.TransferOngoing, "headers", "", time.Now(), seq))
	}
	h.drained(t)
	for _, c := range []struct {
		r        *receiver
		transfer string
		other    string // a secret that must not verify its requests
	}{{ra, "from-a", secretB}, {rb, "from-b", secretA}, {rdef, "headers", secretA}} {
		got := byTransfer(c.r.requests())
		if len(got) != 1 || len(got[c.transfer]) != 3 {
			t.Errorf("%s's endpoint got %v, want only its 3 events", c.transfer, got)
		}
		c.r.checkSigned(t)
		wrong, _ := standardwebhooks.NewWebhook(c.other)
		for _, r := range c.r.requests() {
			if wrong.Verify(r.body, r.header) == nil {
				t.Errorf("%s's request verifies with another endpoint's secret", c.transfer)
			}
		}
	}
	if got := h.deliveries(t, webhook.TransferOngoing, webhook.ResultNoEndpoint); got != 3 {
		t.Errorf("no_endpoint = %v, want 3 (ivr-c has none)", got)
	}
}

// The resolver is asked before every attempt: after a reload swaps the
// endpoint, the retry of an event goes to the new one.
func TestReloadRedirectsRetries(t *testing.T) {
	old, fresh := newReceiver(t, secretA), newReceiver(t, secretB)
	old.setRespond(answer(http.StatusServiceUnavailable))
	var current atomic.Pointer[webhook.Endpoint]
	current.Store(old.endpoint(t, secretA))
	h := start(t, fastConfig(), webhook.NewMemoryOutbox(), func(webhook.Event) *webhook.Endpoint { return current.Load() })
	h.enqueue(t, newEvent(t, webhook.TransferCreated, "tr", "ivr", time.Now(), 0))
	eventually(t, "an attempt at the old endpoint", func() bool { return old.count() > 0 })
	current.Store(fresh.endpoint(t, secretB))
	h.drained(t)
	if fresh.count() != 1 {
		t.Fatalf("new endpoint got %d requests, want 1", fresh.count())
	}
	fresh.checkSigned(t)
}

// No more requests are in flight than there are workers, and the workers
// are used.
func TestWorkersBounded(t *testing.T) {
	const workers = 2
	rcv := newReceiver(t, secretA)
	var inFlight, peak atomic.Int32
	release := make(chan struct{})
	rcv.setRespond(func(_ int, _ *http.Request, w http.ResponseWriter) {
		n := inFlight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-release
		inFlight.Add(-1)
		w.WriteHeader(http.StatusOK)
	})
	ep := rcv.endpoint(t, secretA)
	cfg := fastConfig()
	cfg.Workers = workers
	h := start(t, cfg, webhook.NewMemoryOutbox(), func(webhook.Event) *webhook.Endpoint { return ep })
	enqueueInterleaved(t, h, 6, 2)
	eventually(t, "both workers busy", func() bool { return inFlight.Load() == workers })
	leased := 0
	for tr := range 6 {
		if p := h.ob.Pending(fmt.Sprintf("tr-%d", tr)); len(p) > 0 && p[0].Lease.Token != "" {
			leased++
		}
	}
	close(release)
	if leased != workers {
		t.Errorf("%d transfers leased with %d workers busy, want %d: claims must not outrun the workers", leased, workers, workers)
	}
	h.drained(t)
	if p := peak.Load(); p != workers {
		t.Errorf("peak in-flight requests %d, want %d", p, workers)
	}
}

// A huge response body is read only up to the cap: the receiver's write
// fails once Handoff stops reading, and the event is delivered.
func TestResponseBodyCapped(t *testing.T) {
	rcv := newReceiver(t, secretA)
	writeErr := make(chan error, 1)
	rcv.setRespond(func(_ int, _ *http.Request, w http.ResponseWriter) {
		w.WriteHeader(http.StatusOK)
		chunk := make([]byte, 64<<10)
		var err error
		for i := 0; i < 1024 && err == nil; i++ { // 64 MiB, far above socket buffers
			_, err = w.Write(chunk)
		}
		writeErr <- err
	})
	ep := rcv.endpoint(t, secretA)
	h := start(t, fastConfig(), webhook.NewMemoryOutbox(), func(webhook.Event) *webhook.Endpoint { return ep })
	h.enqueue(t, newEvent(t, webhook.TransferCreated, "tr", "ivr", time.Now(), 0))
	h.drained(t)
	if err := <-writeErr; err == nil {
		t.Error("the receiver wrote 64 MiB without error: Handoff read the whole body")
	}
	if got := h.deliveries(t, webhook.TransferCreated, webhook.ResultDelivered); got != 1 {
		t.Errorf("delivered %v, want 1", got)
	}
}

// Stopping the dispatcher lets the attempt in flight finish and records
// its outcome, instead of cutting it and sending it again later.
func TestShutdownFinishesInFlight(t *testing.T) {
	rcv := newReceiver(t, secretA)
	arrived, release := make(chan struct{}), make(chan struct{})
	rcv.setRespond(func(_ int, _ *http.Request, w http.ResponseWriter) {
		close(arrived)
		<-release
		w.WriteHeader(http.StatusOK)
	})
	ep := rcv.endpoint(t, secretA)
	ob := webhook.NewMemoryOutbox()
	d, err := webhook.New(fastConfig(), ob, func(webhook.Event) *webhook.Endpoint { return ep })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	if err := ob.Enqueue(t.Context(), newEvent(t, webhook.TransferCreated, "tr", "ivr", time.Now(), 0)); err != nil {
		t.Fatal(err)
	}
	d.Notify()
	<-arrived
	cancel()
	close(release)
	<-done
	if s, _ := ob.Stats(t.Context()); s.Depth != 0 {
		t.Errorf("after shutdown %d events remain; the in-flight one should be recorded delivered", s.Depth)
	}
}

// An https endpoint is posted to over TLS (the receiver's certificate is
// trusted through Config.Transport).
func TestHTTPSEndpoint(t *testing.T) {
	rcv := newUnstartedReceiver(t, secretA)
	rcv.srv.StartTLS()
	ep := rcv.endpoint(t, secretA)
	cfg := fastConfig()
	cfg.Transport = rcv.srv.Client().Transport
	h := start(t, cfg, webhook.NewMemoryOutbox(), func(webhook.Event) *webhook.Endpoint { return ep })
	h.enqueue(t, newEvent(t, webhook.TransferCreated, "tr", "ivr", time.Now(), 0))
	h.drained(t)
	if got := rcv.requests(); len(got) != 1 || got[0].verifyErr != nil {
		t.Fatalf("requests %d, want 1 verified over TLS", len(got))
	}
}

// An attempt that outlives its lease cannot record its outcome: the node
// that claimed the event since owns it, and the event is not counted.
func TestLateOutcomeAfterLeaseLost(t *testing.T) {
	clk := newFakeClock()
	rcv := newReceiver(t, secretA)
	rcv.strictTime = false
	ob := webhook.NewMemoryOutbox()
	rcv.setRespond(func(_ int, _ *http.Request, w http.ResponseWriter) {
		clk.Set(t0.Add(time.Hour)) // the lease runs out while the endpoint thinks
		if ds, err := ob.Claim(t.Context(), "other-node", clk.Now(), time.Minute, 10); err != nil || len(ds) != 1 {
			t.Errorf("the other node's claim: %v, %v", ds, err)
		}
		w.WriteHeader(http.StatusOK)
	})
	ep := rcv.endpoint(t, secretA)
	var logs testenv.Buffer
	cfg := fastConfig()
	cfg.Clock, cfg.Logger = clk.Now, slog.New(slog.NewTextHandler(&logs, nil))
	h := start(t, cfg, ob, func(webhook.Event) *webhook.Endpoint { return ep })
	h.enqueue(t, newEvent(t, webhook.TransferCreated, "tr", "ivr", t0, 0))
	eventually(t, "the lost lease to be logged", func() bool { return strings.Contains(logs.String(), "lease lost") })
	if p := ob.Pending("tr"); len(p) != 1 || p[0].Lease.Node != "other-node" {
		t.Errorf("pending %+v, want the event leased by other-node", p)
	}
	if got := h.deliveries(t, webhook.TransferCreated, webhook.ResultDelivered); got != 0 {
		t.Errorf("delivered %v, want 0: the lease was lost", got)
	}
}

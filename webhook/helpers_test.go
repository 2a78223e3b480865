package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/goleak"

	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/webhook"
	"github.com/handoff/handoff/webhook/webhooktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Test secrets: whsec_ + base64 of 24 and 32 bytes.
const (
	secretA = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	secretB = "whsec_c2Vjb25kLXNlY3JldC1mb3ItdGhlLXNlY29uZC1lbmQ="
	secretC = "whsec_dGhpcmQtc2VjcmV0LWZvci1oZWFkZXJzLW1vZGU="
)

// t0 is the fake clock's start, whole seconds.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// fakeClock is a Config.Clock moved by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// received is one request a receiver got.
type received struct {
	id, typ, transfer string
	seq               int
	ts                int64
	header            http.Header
	body              []byte
	verifyErr         error
	at                time.Time // the receiver's clock on arrival
}

// receiver is a real HTTP endpoint on loopback that checks every request's
// signature with the Standard Webhooks reference library, not Handoff's.
type receiver struct {
	srv        *httptest.Server
	wh         *standardwebhooks.Webhook
	strictTime bool             // check webhook-timestamp against the real clock too
	clock      func() time.Time // stamps arrivals
	mu         sync.Mutex
	got        []received
	respond    func(n int, r *http.Request, w http.ResponseWriter) // n counts requests from 1; nil answers 204
}

func newReceiver(t *testing.T, secret string) *receiver {
	t.Helper()
	r := newUnstartedReceiver(t, secret)
	r.srv.Start()
	return r
}

func newUnstartedReceiver(t *testing.T, secret string) *receiver {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{wh: wh, strictTime: true, clock: time.Now}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	in := webhooktest.Read(req, r.wh, r.strictTime)
	rec := received{id: in.ID, typ: in.Type, transfer: in.Transfer, header: in.Header, body: in.Body, verifyErr: in.Err, at: r.clock()}
	rec.ts, _ = strconv.ParseInt(req.Header.Get("webhook-timestamp"), 10, 64)
	var data struct {
		Seq int `json:"seq"`
	}
	_ = json.Unmarshal(in.Data, &data)
	rec.seq = data.Seq
	r.mu.Lock()
	r.got = append(r.got, rec)
	n, respond := len(r.got), r.respond
	r.mu.Unlock()
	if respond != nil {
		respond(n, req, w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) setRespond(f func(n int, req *http.Request, w http.ResponseWriter)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.respond = f
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func (r *receiver) count() int { return len(r.requests()) }

// checkSigned fails on any request whose signature did not verify.
func (r *receiver) checkSigned(t *testing.T) {
	t.Helper()
	for _, g := range r.requests() {
		if g.verifyErr != nil {
			t.Errorf("request %s (%s seq %d): %v", g.id, g.transfer, g.seq, g.verifyErr)
		}
	}
}

// endpoint builds a validated endpoint for a loopback receiver.
func (r *receiver) endpoint(t *testing.T, secret string) *webhook.Endpoint {
	t.Helper()
	ep, err := webhook.NewEndpoint(r.srv.URL+"/hooks/handoff?token=receiver-token", secret, false)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// newEvent makes event seq of a transfer created by credential.
func newEvent(t *testing.T, typ webhook.EventType, transfer, credential string, at time.Time, seq int) webhook.Event {
	t.Helper()
	data := fmt.Sprintf(`{"id":%q,"seq":%d,"status":"ONGOING"}`, transfer, seq)
	ev, err := webhook.NewEvent(typ, transfer, credential, at, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// harness is a running dispatcher, its outbox and its metrics.
type harness struct {
	d    *webhook.Dispatcher
	ob   *webhook.MemoryOutbox
	reg  *prometheus.Registry
	stop func() // ends Run and waits for it (idempotent)
}

// fastConfig retries within milliseconds and polls often.
func fastConfig() webhook.Config {
	return webhook.Config{Workers: 4, Timeout: 5 * time.Second, BackoffBase: time.Millisecond,
		BackoffMax: 10 * time.Millisecond, PollInterval: 5 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)}
}

// start runs a dispatcher until the test ends.
func start(t *testing.T, cfg webhook.Config, ob *webhook.MemoryOutbox, resolve webhook.EndpointResolver) *harness {
	t.Helper()
	d, err := webhook.New(cfg, ob, resolve)
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry(t, d)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	stop := sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	return &harness{d: d, ob: ob, reg: reg, stop: stop}
}

func (h *harness) enqueue(t *testing.T, evs ...webhook.Event) {
	t.Helper()
	if err := h.ob.Enqueue(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
	h.d.Notify()
}

// drained waits until the outbox is empty, then stops the dispatcher: Run
// returns once its workers have finished, so every outcome is counted (a
// worker counts one just after the outbox took it).
func (h *harness) drained(t *testing.T) {
	t.Helper()
	eventually(t, "the outbox to drain", func() bool {
		s, _ := h.ob.Stats(context.Background())
		return s.Depth == 0
	})
	h.stop()
}

// metric reads one series of the registry ("label=value" for each label
// it has), failing when there is none.
func (h *harness) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, n := testenv.MetricSeries(t, h.reg, name, labels...)
	if n == 0 {
		t.Fatalf("no sample %s%v", name, labels)
	}
	return v
}

func (h *harness) deliveries(t *testing.T, typ webhook.EventType, r webhook.Result) float64 {
	return h.metric(t, "handoff_webhook_deliveries_total", "type="+string(typ), "result="+string(r))
}

func (h *harness) retries(t *testing.T, reason string) float64 {
	return h.metric(t, "handoff_webhook_retries_total", "reason="+reason)
}

// eventually polls cond every 2 ms until it holds; the 20 s bound only
// catches a hang.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Poll(t, 20*time.Second, 2*time.Millisecond, what, cond)
}

// byTransfer groups the requests' sequence numbers per transfer, in arrival order.
func byTransfer(rs []received) map[string][]int {
	out := map[string][]int{}
	for _, r := range rs {
		out[r.transfer] = append(out[r.transfer], r.seq)
	}
	return out
}

func newRegistry(t *testing.T, d *webhook.Dispatcher) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := d.Register(reg); err != nil {
		t.Fatal(err)
	}
	return reg
}

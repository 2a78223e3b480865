package cluster_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/handoff/handoff/internal/redistest"
	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/webhook/webhooktest"
)

const webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// received is one webhook request, verified with the Standard Webhooks
// library.
type received struct {
	id, typ, transfer string
	body              string
	answered          bool // 2xx
	err               error
}

// hookSink records webhook requests; while hold is set it keeps them
// waiting (unanswered) until released.
type hookSink struct {
	srv     *httptest.Server
	wh      *standardwebhooks.Webhook
	mu      sync.Mutex
	got     []received
	holding int
	hold    chan struct{} // non-nil: requests wait for it to close
}

func newHookSink(t *testing.T) *hookSink {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(webhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	s := &hookSink{wh: wh}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *hookSink) serve(w http.ResponseWriter, r *http.Request) {
	in := webhooktest.Read(r, s.wh, true)
	rec := received{id: in.ID, typ: in.Type, transfer: in.Transfer, body: string(in.Body), err: in.Err}
	s.mu.Lock()
	hold := s.hold
	if hold != nil {
		s.holding++
	}
	s.mu.Unlock()
	if hold != nil {
		<-hold
		w.WriteHeader(http.StatusServiceUnavailable)
	} else {
		rec.answered = true
		w.WriteHeader(http.StatusNoContent)
	}
	s.mu.Lock()
	s.got = append(s.got, rec)
	s.mu.Unlock()
}

func (s *hookSink) setHold(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.hold, s.holding = make(chan struct{}), 0
		return
	}
	close(s.hold)
	s.hold = nil
}

func (s *hookSink) held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holding
}

// deliveries lists the answered requests whose transfer id has prefix.
func (s *hookSink) deliveries(prefix string) []received { return s.requests(prefix, true) }

// requests lists the requests answered 2xx (or not) of the transfers
// whose id has prefix.
func (s *hookSink) requests(prefix string, answered bool) []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []received
	for _, r := range s.got {
		if r.answered == answered && strings.HasPrefix(r.transfer, prefix) {
			out = append(out, r)
		}
	}
	return out
}

func (s *hookSink) waitDeliveries(t *testing.T, prefix string, n int) []received {
	t.Helper()
	var got []received
	waitUntil(t, fmt.Sprintf("%d webhook deliveries for %s*", n, prefix), func() bool {
		got = s.deliveries(prefix)
		return len(got) >= n
	})
	return got
}

// checkLifecycles wants, for each transfer, created then expired, each
// signed; and returns how often each webhook-id was delivered.
func checkLifecycles(t *testing.T, got []received) map[string]int {
	t.Helper()
	seq := map[string][]string{}
	times := map[string]int{}
	for _, r := range got {
		if r.err != nil {
			t.Errorf("%s %s: %v", r.transfer, r.typ, r.err)
		}
		if times[r.id]++; times[r.id] == 1 {
			seq[r.transfer] = append(seq[r.transfer], r.typ)
		}
	}
	for id, s := range seq {
		if strings.Join(s, " ") != "transfer.created transfer.expired" {
			t.Errorf("%s: events %v, want created then expired", id, s)
		}
	}
	return times
}

// Two nodes on one Redis: in normal operation every event is delivered
// once, by one node or the other, in order per transfer; a node killed
// while it holds events leaves them to another node when the leases run
// out, and nothing is lost.
func TestClusterWebhooks(t *testing.T) {
	redistest.Require(t, "redis-server")
	sink := newHookSink(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "webhooks.yaml")
	yaml := fmt.Sprintf("auth:\n  credentials:\n    - {id: %s, secret: %s, webhook_url: %q, webhook_secret: %s}\nnumbers:\n  ttl: 2s\nwebhooks:\n  timeout: 2s\n",
		apiID, apiSecret, sink.srv.URL+"/hooks", webhookSecret)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	redis := redistest.Start(t)
	a := startNode(t, dir, "node-a", redis.URL(), 40000, "-config", cfg)
	b := startNode(t, dir, "node-b", redis.URL(), 41000, "-config", cfg)

	// 1. Normal operation: 10 transfers, created on both nodes, expire.
	for i := range 10 {
		if code, _, err := []*node{a, b}[i%2].create(fmt.Sprintf("both-%d", i), "SIP", ""); err != nil || code != 200 {
			t.Fatalf("create: %d %v", code, err)
		}
	}
	got := sink.waitDeliveries(t, "both-", 20)
	for id, n := range checkLifecycles(t, got) {
		if n != 1 {
			t.Errorf("%s delivered %d times in normal operation, want once", id, n)
		}
	}
	// The nodes count a delivery once its outcome is stored, just after
	// the receiver answered.
	var byA, byB float64
	waitUntil(t, "the nodes to count 20 deliveries", func() bool {
		byA = a.metricSum(t, "handoff_webhook_deliveries_total", "result=delivered")
		byB = b.metricSum(t, "handoff_webhook_deliveries_total", "result=delivered")
		return byA+byB >= 20
	})
	if n := len(sink.deliveries("both-")); n != 20 || byA+byB != 20 || byA == 0 || byB == 0 {
		t.Errorf("%d deliveries; counted by node-a %v, node-b %v: want 20 in all, shared", n, byA, byB)
	}

	// 2. node-a alone claims the next events and hangs on them; it dies;
	// node-b, started again, takes them over once the leases run out.
	b.stop()
	sink.setHold(true)
	for i := range 3 {
		if code, _, err := a.create(fmt.Sprintf("dead-%d", i), "SIP", ""); err != nil || code != 200 {
			t.Fatalf("create: %d %v", code, err)
		}
	}
	waitUntil(t, "node-a to hold 3 attempts", func() bool { return sink.held() == 3 })
	a.kill()
	sink.setHold(false)
	b = startNode(t, dir, "node-b", redis.URL(), 41000, "-config", cfg)
	got = sink.waitDeliveries(t, "dead-", 6)
	times := checkLifecycles(t, got)
	if len(times) != 6 {
		t.Errorf("%d distinct events for dead-*, want 6", len(times))
	}
	// What node-a had sent came again from node-b: same id, same body.
	bodies := map[string]string{}
	for _, r := range got {
		bodies[r.id] = r.body
	}
	for _, r := range sink.requests("dead-", false) {
		if bodies[r.id] != r.body {
			t.Errorf("%s %s (%s), sent by the dead node, was not delivered again as such", r.transfer, r.typ, r.id)
		}
	}
	waitUntil(t, "no event pending after the takeover", func() bool {
		return b.metricSum(t, "handoff_webhook_events_pending") == 0
	})
}

// waitUntil polls cond every 20 ms for up to 3 × waitLimit (a takeover
// waits for a lease to run out first).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Poll(t, 3*waitLimit, 20*time.Millisecond, what, cond)
}

package webhook_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/handoff/handoff/webhook"
)

// seqs is 0..n-1.
func seqs(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// enqueueInterleaved enqueues perTransfer events for each transfer, round
// robin, and returns them by id.
func enqueueInterleaved(t *testing.T, h *harness, transfers, perTransfer int) map[string]webhook.Event {
	byID := map[string]webhook.Event{}
	for seq := range perTransfer {
		for tr := range transfers {
			ev := newEvent(t, webhook.TransferOngoing, fmt.Sprintf("tr-%d", tr), "ivr", time.Now(), seq)
			byID[ev.ID] = ev
			h.enqueue(t, ev)
		}
	}
	return byID
}

// checkInOrder wants every transfer's events once each, in order.
func checkInOrder(t *testing.T, rs []received, transfers, perTransfer int) {
	t.Helper()
	got := byTransfer(rs)
	for tr := range transfers {
		id := fmt.Sprintf("tr-%d", tr)
		if !slices.Equal(got[id], seqs(perTransfer)) {
			t.Errorf("%s arrived as %v, want %v", id, got[id], seqs(perTransfer))
		}
	}
	if len(rs) != transfers*perTransfer {
		t.Errorf("%d requests, want %d (one per event)", len(rs), transfers*perTransfer)
	}
}

// Several transfers interleaved, four workers, a receiver that answers
// after a random pause: every transfer's events arrive in order, signed,
// with the body and id the event was built with.
func TestDeliversInOrderPerTransfer(t *testing.T) {
	rcv := newReceiver(t, secretA)
	rcv.setRespond(func(_ int, _ *http.Request, w http.ResponseWriter) {
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		w.WriteHeader(http.StatusOK)
	})
	ep := rcv.endpoint(t, secretA)
	h := start(t, fastConfig(), webhook.NewMemoryOutbox(), func(webhook.Event) *webhook.Endpoint { return ep })
	const transfers, perTransfer = 6, 8
	byID := enqueueInterleaved(t, h, transfers, perTransfer)
	h.drained(t)

	rs := rcv.requests()
	checkInOrder(t, rs, transfers, perTransfer)
	rcv.checkSigned(t)
	for _, r := range rs {
		ev := byID[r.id]
		if string(r.body) != string(ev.Body) || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("request %s: body %s content-type %q; want the event's body %s, application/json",
				r.id, r.body, r.header.Get("Content-Type"), ev.Body)
		}
	}
	if got := h.deliveries(t, webhook.TransferOngoing, webhook.ResultDelivered); got != transfers*perTransfer {
		t.Errorf("deliveries_total{delivered} = %v, want %d", got, transfers*perTransfer)
	}
}

// The receiver's port refuses connections for a while, then a server comes
// up on it: everything arrives, once, in order per transfer.
func TestReceiverDownThenUp(t *testing.T) {
	rcv := newUnstartedReceiver(t, secretA)
	addr := rcv.srv.Listener.Addr().String()
	rcv.srv.Listener.Close() // down: connection refused
	ep, err := webhook.NewEndpoint("http://"+addr+"/hook", secretA, false)
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, fastConfig(), webhook.NewMemoryOutbox(), func(webhook.Event) *webhook.Endpoint { return ep })
	const transfers, perTransfer = 3, 4
	enqueueInterleaved(t, h, transfers, perTransfer)
	eventually(t, "retries of refused connections", func() bool { return h.retries(t, "connection") >= 2*transfers })

	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("bringing the receiver back on %s: %v", addr, err)
	}
	rcv.srv.Listener = l
	rcv.srv.Start()
	h.drained(t)
	checkInOrder(t, rcv.requests(), transfers, perTransfer)
	rcv.checkSigned(t)
	if got := h.deliveries(t, webhook.TransferOngoing, webhook.ResultDelivered); got != transfers*perTransfer {
		t.Errorf("delivered %v, want %d", got, transfers*perTransfer)
	}
}

// Two nodes sharing one outbox (as two instances share Redis) deliver each
// event once, in order per transfer.
func TestTwoNodesShareAnOutbox(t *testing.T) {
	rcv := newReceiver(t, secretA)
	ep := rcv.endpoint(t, secretA)
	ob := webhook.NewMemoryOutbox()
	resolve := func(webhook.Event) *webhook.Endpoint { return ep }
	cfgA, cfgB := fastConfig(), fastConfig()
	cfgA.Node, cfgB.Node = "node-a", "node-b"
	a := start(t, cfgA, ob, resolve)
	b := start(t, cfgB, ob, resolve)
	const transfers, perTransfer = 8, 5
	enqueueInterleaved(t, a, transfers, perTransfer)
	b.d.Notify()
	a.drained(t)
	b.drained(t)
	checkInOrder(t, rcv.requests(), transfers, perTransfer)
	total := a.deliveries(t, webhook.TransferOngoing, webhook.ResultDelivered) + b.deliveries(t, webhook.TransferOngoing, webhook.ResultDelivered)
	if total != transfers*perTransfer {
		t.Errorf("the nodes delivered %v events together, want %d", total, transfers*perTransfer)
	}
}

// A node that claimed a transfer's events and died holds them only until
// its lease runs out; another node then delivers them all, in order, while
// other transfers were never held up.
func TestDeadNodesEventsTakenOver(t *testing.T) {
	clk := newFakeClock()
	rcv := newReceiver(t, secretA)
	rcv.strictTime, rcv.clock = false, clk.Now
	ep := rcv.endpoint(t, secretA)
	ob := webhook.NewMemoryOutbox()
	orphan := []webhook.Event{newEvent(t, webhook.TransferCreated, "orphan", "ivr", t0, 0), newEvent(t, webhook.TransferOngoing, "orphan", "ivr", t0, 1)}
	if err := ob.Enqueue(t.Context(), orphan...); err != nil {
		t.Fatal(err)
	}
	const lease = time.Minute
	if ds, err := ob.Claim(t.Context(), "dead-node", t0, lease, 10); err != nil || len(ds) != 1 {
		t.Fatalf("the dead node's claim: %v, %v", ds, err)
	}
	cfg := fastConfig()
	cfg.Clock, cfg.Workers = clk.Now, 1
	h := start(t, cfg, ob, func(webhook.Event) *webhook.Endpoint { return ep })
	h.enqueue(t, newEvent(t, webhook.TransferCreated, "healthy", "ivr", t0, 0))
	eventually(t, "the healthy transfer's event", func() bool { return rcv.count() == 1 })

	clk.Set(t0.Add(lease))
	h.d.Notify()
	h.drained(t)
	rs := rcv.requests()
	if got := byTransfer(rs); !slices.Equal(got["orphan"], []int{0, 1}) || !slices.Equal(got["healthy"], []int{0}) {
		t.Fatalf("arrivals %v, want healthy [0] and orphan [0 1]", got)
	}
	for _, r := range rs {
		if r.transfer == "orphan" && r.at.Before(t0.Add(lease)) {
			t.Errorf("orphan event %d delivered at %s, while the dead node's lease held", r.seq, r.at.Sub(t0))
		}
	}
	rcv.checkSigned(t)
}

package webhooktest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/handoff/handoff/webhook"
)

// A transfer's events come out one at a time, in enqueue order, whether
// enqueued together or apart.
func fifoPerTransfer(t *testing.T, ob webhook.Outbox) {
	e1, e2, e3 := event(t, "t1", 1), event(t, "t1", 2), event(t, "t1", 3)
	enqueue(t, ob, e1, e2)
	enqueue(t, ob, e3)
	now := base.Add(time.Minute)
	for _, want := range []webhook.Event{e1, e2, e3} {
		d := claimOne(t, ob, "a", now, want.ID)
		claimOne(t, ob, "a", now, "") // the transfer is leased: nothing else
		done(t, ob, d)
	}
	claimOne(t, ob, "a", now, "")
	wantDepth(t, ob, 0)
}

// One claim takes at most one event per transfer, at most limit in all,
// oldest first.
func onePerTransferAndLimit(t *testing.T, ob webhook.Outbox) {
	a1, b1, c1 := event(t, "ta", 1), event(t, "tb", 2), event(t, "tc", 3)
	enqueue(t, ob, a1, event(t, "ta", 4), b1, event(t, "tb", 5), c1)
	now := base.Add(time.Minute)
	if got := claim(t, ob, "a", now, 0); len(got) != 0 {
		t.Fatalf("limit 0 claimed %v", ids(got))
	}
	got := claim(t, ob, "a", now, 2)
	if !slices.Equal(ids(got), []string{a1.ID, b1.ID}) {
		t.Fatalf("claimed %v, want [%s %s] (heads of ta, tb)", ids(got), a1.ID, b1.ID)
	}
	got = claim(t, ob, "a", now, 10)
	if !slices.Equal(ids(got), []string{c1.ID}) {
		t.Fatalf("claimed %v, want [%s] (ta and tb are leased)", ids(got), c1.ID)
	}
}

// What Claim hands back is the event as enqueued, byte for byte, with the
// lease it took.
func eventRoundTrip(t *testing.T, ob webhook.Outbox) {
	ev := event(t, "t1", 1)
	enqueue(t, ob, ev)
	now := base.Add(time.Minute)
	d := claimOne(t, ob, "node-1", now, ev.ID)
	if d.Type != ev.Type || d.TransferID != ev.TransferID || d.Credential != ev.Credential ||
		!d.CreatedAt.Equal(ev.CreatedAt) || string(d.Body) != string(ev.Body) {
		t.Fatalf("claimed %+v\nwant %+v", d.Event, ev)
	}
	if d.Attempt != 0 || d.LastError != "" {
		t.Fatalf("fresh event: attempt %d, last error %q", d.Attempt, d.LastError)
	}
	l := d.Lease
	if l.TransferID != "t1" || l.EventID != ev.ID || l.Node != "node-1" || l.Token == "" || !l.Expires.Equal(now.Add(lease)) {
		t.Fatalf("lease %+v: want transfer t1, event %s, node node-1, a token, expiry %s", l, ev.ID, now.Add(lease))
	}
}

// While a lease lives no node, the holder included, gets the transfer.
func leaseExcludesOtherNodes(t *testing.T, ob webhook.Outbox) {
	ev := event(t, "t1", 1)
	enqueue(t, ob, ev, event(t, "t1", 2))
	now := base.Add(time.Minute)
	claimOne(t, ob, "a", now, ev.ID)
	claimOne(t, ob, "b", now, "")
	claimOne(t, ob, "b", now.Add(lease-time.Second), "")
	claimOne(t, ob, "a", now.Add(lease-time.Second), "")
}

// A node that dies holding a lease loses it when it runs out: another node
// gets the same event, and the dead node's late answer changes nothing.
func expiredLeaseRedelivers(t *testing.T, ob webhook.Outbox) {
	ev := event(t, "t1", 1)
	enqueue(t, ob, ev)
	now := base.Add(time.Minute)
	dead := claimOne(t, ob, "a", now, ev.ID)
	again := claimOne(t, ob, "b", now.Add(lease), ev.ID)
	if string(again.Body) != string(ev.Body) || again.Lease.Token == dead.Lease.Token {
		t.Fatalf("redelivery: body changed or lease token reused (%q)", again.Lease.Token)
	}
	ctx := context.Background()
	wantLeaseLost(t, ob.Done(ctx, dead.Lease, webhook.ResultDelivered), "Done with the expired lease")
	wantLeaseLost(t, ob.Retry(ctx, dead.Lease, now, 1, "x"), "Retry with the expired lease")
	wantDepth(t, ob, 1)
	done(t, ob, again)
	wantDepth(t, ob, 0)
}

// Retry keeps the event, due again at next, with the attempt count and
// error; a stale lease cannot retry it.
func retrySchedules(t *testing.T, ob webhook.Outbox) {
	ev := event(t, "t1", 1)
	enqueue(t, ob, ev)
	now := base.Add(time.Minute)
	d := claimOne(t, ob, "a", now, ev.ID)
	next := now.Add(10 * time.Second)
	if err := ob.Retry(context.Background(), d.Lease, next, 1, "HTTP 503"); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	wantLeaseLost(t, ob.Retry(context.Background(), d.Lease, next, 1, "x"), "Retry with a released lease")
	claimOne(t, ob, "a", next.Add(-time.Second), "")
	d = claimOne(t, ob, "b", next, ev.ID)
	if d.Attempt != 1 || d.LastError != "HTTP 503" || !d.NextAttempt.Equal(next) {
		t.Fatalf("retried: attempt %d, error %q, next %s; want 1, HTTP 503, %s", d.Attempt, d.LastError, d.NextAttempt, next)
	}
}

// An event waiting for its retry holds back the later events of its
// transfer, and only those.
func retryKeepsOrder(t *testing.T, ob webhook.Outbox) {
	e1, e2, other := event(t, "t1", 1), event(t, "t1", 2), event(t, "t2", 3)
	enqueue(t, ob, e1, e2, other)
	now := base.Add(time.Minute)
	d := claim(t, ob, "a", now, 1)[0]
	if err := ob.Retry(context.Background(), d.Lease, now.Add(time.Hour), 1, "timeout"); err != nil {
		t.Fatal(err)
	}
	claimOne(t, ob, "a", now.Add(time.Second), other.ID)
}

// Claim serves the longest-due event first, whatever the enqueue order.
func earliestDueFirst(t *testing.T, ob webhook.Outbox) {
	early, late := event(t, "t1", 1), event(t, "t2", 2)
	enqueue(t, ob, early, late)
	now := base.Add(time.Minute)
	d := claim(t, ob, "a", now, 1)[0]
	if err := ob.Retry(context.Background(), d.Lease, now.Add(20*time.Second), 1, "timeout"); err != nil {
		t.Fatal(err)
	}
	got := claim(t, ob, "a", now.Add(time.Hour), 1)
	if !slices.Equal(ids(got), []string{late.ID}) {
		t.Fatalf("claimed %v, want [%s]: it was due since enqueue, the retried one only later", ids(got), late.ID)
	}
}

// Done and Retry with a lease that was never taken fail.
func unknownLease(t *testing.T, ob webhook.Outbox) {
	ev := event(t, "t1", 1)
	enqueue(t, ob, ev)
	ctx := context.Background()
	forged := webhook.Lease{TransferID: "t1", EventID: ev.ID, Node: "a", Token: "forged", Expires: base.Add(time.Hour)}
	wantLeaseLost(t, ob.Done(ctx, forged, webhook.ResultDelivered), "Done with a forged lease")
	wantLeaseLost(t, ob.Retry(ctx, forged, base, 1, "x"), "Retry with a forged lease")
	gone := webhook.Lease{TransferID: "none", EventID: "evt_none", Node: "a", Token: "1"}
	wantLeaseLost(t, ob.Done(ctx, gone, webhook.ResultDelivered), "Done of an unknown transfer")
	wantDepth(t, ob, 1)
}

// Stats counts every undelivered event, leased or waiting, and the oldest.
func stats(t *testing.T, ob webhook.Outbox) {
	s, err := ob.Stats(context.Background())
	if err != nil || s.Depth != 0 || !s.Oldest.IsZero() {
		t.Fatalf("empty outbox: %+v, %v", s, err)
	}
	enqueue(t, ob, event(t, "t2", 5), event(t, "t1", 3), event(t, "t1", 4))
	claim(t, ob, "a", base.Add(time.Minute), 10)
	s, err = ob.Stats(context.Background())
	if err != nil || s.Depth != 3 || !s.Oldest.Equal(base.Add(3*time.Second)) {
		t.Fatalf("stats %+v, %v; want depth 3, oldest %s", s, err, base.Add(3*time.Second))
	}
}

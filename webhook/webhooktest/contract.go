// Package webhooktest holds the contract every webhook.Outbox keeps, as a
// test suite the in-memory, bbolt and Redis implementations all run.
package webhooktest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/handoff/handoff/webhook"
)

// base is the suite's clock origin; all times are whole seconds so stores
// that keep milliseconds or seconds compare alike.
var base = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const lease = 30 * time.Second

// OutboxContract runs the rules of webhook.Outbox against fresh outboxes
// from newOutbox (each subtest gets its own, empty).
func OutboxContract(t *testing.T, newOutbox func(t *testing.T) webhook.Outbox) {
	for _, c := range []struct {
		name string
		run  func(*testing.T, webhook.Outbox)
	}{
		{"FIFOPerTransfer", fifoPerTransfer},
		{"OnePerTransferAndLimit", onePerTransferAndLimit},
		{"EventRoundTrip", eventRoundTrip},
		{"LeaseExcludesOtherNodes", leaseExcludesOtherNodes},
		{"ExpiredLeaseRedelivers", expiredLeaseRedelivers},
		{"RetrySchedules", retrySchedules},
		{"RetryKeepsOrder", retryKeepsOrder},
		{"EarliestDueFirst", earliestDueFirst},
		{"UnknownLease", unknownLease},
		{"Stats", stats},
		{"ConcurrentNodes", concurrentNodes},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, newOutbox(t)) })
	}
}

// event makes event n of a transfer, created n seconds after base.
func event(t *testing.T, transfer string, n int) webhook.Event {
	t.Helper()
	data := fmt.Sprintf(`{"id":%q,"n":%d,"note":"<&> \u00e9"}`, transfer, n)
	ev, err := webhook.NewEvent(webhook.TransferOngoing, transfer, "cred-"+transfer, base.Add(time.Duration(n)*time.Second), []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func enqueue(t *testing.T, ob webhook.Outbox, evs ...webhook.Event) {
	t.Helper()
	if err := ob.Enqueue(context.Background(), evs...); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
}

func claim(t *testing.T, ob webhook.Outbox, node string, now time.Time, limit int) []webhook.Delivery {
	t.Helper()
	ds, err := ob.Claim(context.Background(), node, now, lease, limit)
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	return ds
}

// claimOne claims and wants exactly the event with id want ("" for none).
func claimOne(t *testing.T, ob webhook.Outbox, node string, now time.Time, want string) webhook.Delivery {
	t.Helper()
	ds := claim(t, ob, node, now, 10)
	switch {
	case want == "" && len(ds) == 0:
		return webhook.Delivery{}
	case want != "" && len(ds) == 1 && ds[0].ID == want:
		return ds[0]
	}
	t.Fatalf("%s at %s: claimed %v, want [%s]", node, now.Sub(base), ids(ds), want)
	return webhook.Delivery{}
}

func ids(ds []webhook.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func done(t *testing.T, ob webhook.Outbox, d webhook.Delivery) {
	t.Helper()
	if err := ob.Done(context.Background(), d.Lease, webhook.ResultDelivered); err != nil {
		t.Fatalf("Done(%s): %v", d.ID, err)
	}
}

func wantLeaseLost(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, webhook.ErrLeaseLost) {
		t.Fatalf("%s: err = %v, want ErrLeaseLost", what, err)
	}
}

func wantDepth(t *testing.T, ob webhook.Outbox, depth int) {
	t.Helper()
	s, err := ob.Stats(context.Background())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if s.Depth != depth {
		t.Fatalf("Stats.Depth = %d, want %d", s.Depth, depth)
	}
}

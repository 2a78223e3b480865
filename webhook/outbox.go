package webhook

import (
	"context"
	"errors"
	"time"
)

// Outbox is the durable queue of undelivered events. The transfer stores
// implement it (bbolt, Redis) and append an event in the same transaction
// as the state change that causes it, so a committed change always has its
// event and a crash loses none. webhooktest.OutboxContract states and
// checks the rules every implementation keeps:
//
//   - Events of one transfer come out one at a time, in the order they were
//     enqueued: Claim offers only the oldest undelivered event of a transfer,
//     and only while no live lease is held on that transfer.
//   - A claim takes a lease on the transfer until now+lease. Done and Retry
//     end it; if the node dies instead, the lease runs out and any node's
//     next Claim offers the same event again (same ID, same Body): delivery
//     is at least once, and a duplicate repeats the webhook-id.
//   - Done and Retry take the Lease that Claim returned and fail with
//     ErrLeaseLost, changing nothing, once that lease has run out and
//     another claim was made.
//
// All times come from the caller, so every node must have a sane clock
// (lease expiry compares the claiming node's time with the stored expiry).
type Outbox interface {
	// Enqueue appends events in order. An event is due at once.
	Enqueue(ctx context.Context, events ...Event) error
	// Claim leases up to limit due events for node, at most one per
	// transfer, earliest NextAttempt first (enqueue order breaks ties).
	Claim(ctx context.Context, node string, now time.Time, lease time.Duration, limit int) ([]Delivery, error)
	// Done removes the leased event for good (delivered, failed or dropped,
	// as r says) and frees its transfer, so the transfer's next event is due.
	Done(ctx context.Context, l Lease, r Result) error
	// Retry records a failed attempt: the event stays the head of its
	// transfer, due again at next, with attempt (the count of attempts made)
	// and lastErr; the lease is released.
	Retry(ctx context.Context, l Lease, next time.Time, attempt int, lastErr string) error
	// Stats counts the undelivered events, leased or not.
	Stats(ctx context.Context) (Stats, error)
}

// ErrLeaseLost: the lease ran out and the event was claimed again.
var ErrLeaseLost = errors.New("webhook: outbox lease lost")

// Delivery is a claimed event.
type Delivery struct {
	Event
	// Attempt counts the attempts already made (0 on the first claim).
	Attempt int
	// LastError describes the last failed attempt.
	LastError string
	// NextAttempt is when the event became due (zero for a fresh event).
	NextAttempt time.Time
	// Lease is the handle to pass to Done or Retry.
	Lease Lease
}

// Lease identifies one claim. Token is opaque: a new one on every claim.
type Lease struct {
	TransferID string
	EventID    string
	Node       string
	Token      string
	Expires    time.Time
}

// Result is how an event left the outbox; it is the result label of
// handoff_webhook_deliveries_total.
type Result string

// The results of an event.
const (
	// ResultDelivered: the endpoint answered 2xx.
	ResultDelivered Result = "delivered"
	// ResultFailed: the endpoint answered a status that retrying cannot fix
	// (3xx, 4xx other than 408 and 429).
	ResultFailed Result = "failed"
	// ResultExpired: the max age passed before a delivery succeeded.
	ResultExpired Result = "expired"
	// ResultNoEndpoint: the transfer's credential has no endpoint.
	ResultNoEndpoint Result = "no_endpoint"
)

// Results lists every Result.
var Results = []Result{ResultDelivered, ResultFailed, ResultExpired, ResultNoEndpoint}

// Stats describes the undelivered events.
type Stats struct {
	// Depth counts them.
	Depth int
	// Oldest is the CreatedAt of the oldest one, zero when Depth is 0.
	Oldest time.Time
}

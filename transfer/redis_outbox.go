package transfer

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/handoff/handoff/webhook"
)

// The shared store's outbox (webhook.Outbox), in the keys lua/outbox_lib.lua
// lists. Events are appended by lua/write.lua in the change that causes
// them; leases are per transfer and hold the transfer's head, so several
// nodes claiming at once each get other transfers, and a node that dies
// leaves its leases to run out.

// eventArgs is one event as obEnqueue (lua/outbox_lib.lua) takes it.
type eventArgs struct {
	ID         string `json:"id"`
	Transfer   string `json:"transfer"`
	Credential string `json:"credential"`
	Type       string `json:"type"`
	CreatedAt  string `json:"createdAt"`
	Body       string `json:"body"`
	NumberAt   int    `json:"numberAt"`
}

func newEventArgs(e outboxEvent) eventArgs {
	return eventArgs{ID: e.ID, Transfer: e.TransferID, Credential: e.Credential, Type: string(e.Type),
		CreatedAt: micros(e.CreatedAt), Body: string(e.Body), NumberAt: e.NumberAt}
}

func eventsArgs(events []outboxEvent) []eventArgs {
	out := make([]eventArgs, len(events))
	for i, e := range events {
		out[i] = newEventArgs(e)
	}
	return out
}

// enqueueArgs is what lua/outbox_enqueue.lua reads.
type enqueueArgs struct {
	Prefix string      `json:"prefix"`
	Events []eventArgs `json:"events"`
}

// Enqueue implements webhook.Outbox.
func (s *RedisStore) Enqueue(ctx context.Context, events ...webhook.Event) error {
	evs := make([]outboxEvent, len(events))
	for i, ev := range events {
		evs[i] = outboxEvent{Event: ev, NumberAt: -1}
	}
	if err := s.run(ctx, enqueueScript, enqueueArgs{Prefix: s.p, Events: eventsArgs(evs)}).Err(); err != nil {
		return wrap(ctx, err)
	}
	s.webhooks.notify(len(events))
	return nil
}

// claimArgs is what lua/outbox_claim.lua reads.
type claimArgs struct {
	Prefix  string `json:"prefix"`
	Node    string `json:"node"`
	Now     string `json:"now"`
	Expires string `json:"expires"`
	Limit   int    `json:"limit"`
}

// Claim implements webhook.Outbox.
func (s *RedisStore) Claim(ctx context.Context, node string, now time.Time, lease time.Duration, limit int) ([]webhook.Delivery, error) {
	if limit <= 0 {
		return nil, ctx.Err()
	}
	expires := now.Add(lease)
	rows, err := s.run(ctx, claimScript, claimArgs{Prefix: s.p, Node: node, Now: micros(now),
		Expires: micros(expires), Limit: limit}).Slice()
	if err != nil && err != redis.Nil {
		return nil, wrap(ctx, err)
	}
	out := make([]webhook.Delivery, 0, len(rows))
	for _, row := range rows {
		d, err := claimedDelivery(row, node, expires)
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}

// claimedDelivery decodes one row of lua/outbox_claim.lua's reply.
func claimedDelivery(row any, node string, expires time.Time) (webhook.Delivery, error) {
	f, ok := row.([]any)
	if !ok || len(f) != 10 {
		return webhook.Delivery{}, fmt.Errorf("outbox claim: unexpected reply %v", row)
	}
	s := make([]string, len(f))
	for i, v := range f {
		s[i], _ = v.(string)
	}
	created, _ := strconv.ParseInt(s[4], 10, 64)
	attempt, _ := strconv.Atoi(s[6])
	due, _ := strconv.ParseInt(s[8], 10, 64)
	d := webhook.Delivery{
		Event: webhook.Event{ID: s[0], TransferID: s[1], Credential: s[2], Type: webhook.EventType(s[3]),
			CreatedAt: time.UnixMicro(created).UTC(), Body: []byte(s[5])},
		Attempt: attempt, LastError: s[7],
		Lease: webhook.Lease{TransferID: s[1], EventID: s[0], Node: node, Token: s[9], Expires: expires},
	}
	if due > 0 {
		d.NextAttempt = time.UnixMicro(due).UTC()
	}
	return d, nil
}

// settleArgs is what lua/outbox_done.lua and lua/outbox_retry.lua read.
type settleArgs struct {
	Prefix    string `json:"prefix"`
	Transfer  string `json:"transfer"`
	Event     string `json:"event"`
	Token     string `json:"token"`
	Next      string `json:"next,omitempty"`
	Attempt   int    `json:"attempt,omitempty"`
	LastError string `json:"lastError"`
}

// settle runs script, Done or Retry of a lease; "lost" is ErrLeaseLost.
func (s *RedisStore) settle(ctx context.Context, script *redis.Script, args settleArgs) error {
	res, err := s.run(ctx, script, args).Text()
	if err != nil {
		return wrap(ctx, err)
	}
	if res != "ok" {
		return webhook.ErrLeaseLost
	}
	return nil
}

func (s *RedisStore) leaseArgs(l webhook.Lease) settleArgs {
	return settleArgs{Prefix: s.p, Transfer: l.TransferID, Event: l.EventID, Token: l.Token}
}

// Done implements webhook.Outbox.
func (s *RedisStore) Done(ctx context.Context, l webhook.Lease, _ webhook.Result) error {
	return s.settle(ctx, doneScript, s.leaseArgs(l))
}

// Retry implements webhook.Outbox.
func (s *RedisStore) Retry(ctx context.Context, l webhook.Lease, next time.Time, attempt int, lastErr string) error {
	a := s.leaseArgs(l)
	a.Next, a.Attempt, a.LastError = micros(next), attempt, lastErr
	return s.settle(ctx, retryScript, a)
}

// Stats implements webhook.Outbox.
func (s *RedisStore) Stats(ctx context.Context) (webhook.Stats, error) {
	var depth *redis.IntCmd
	var oldest *redis.ZSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		depth = p.ZCard(ctx, s.key("ob:age"))
		oldest = p.ZRangeWithScores(ctx, s.key("ob:age"), 0, 0)
		return nil
	})
	if err != nil {
		return webhook.Stats{}, wrap(ctx, err)
	}
	st := webhook.Stats{Depth: int(depth.Val())}
	if z := oldest.Val(); len(z) == 1 {
		st.Oldest = time.UnixMicro(int64(z[0].Score)).UTC()
	}
	return st, nil
}

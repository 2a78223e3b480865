package webhook

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"sync"
	"time"
)

// MemoryOutbox is an Outbox in process memory. It is NOT DURABLE: its
// events are lost when the process exits. It serves the tests; the
// transfer stores (bbolt, Redis) are the durable outboxes.
type MemoryOutbox struct {
	mu     sync.Mutex
	queues map[string]*memQueue // by transfer id
	seq    uint64               // enqueue order across transfers
	tokens uint64
}

// memQueue is one transfer's undelivered events, oldest first, and the
// lease on its head.
type memQueue struct {
	entries []*memEntry
	lease   Lease // zero when free
}

type memEntry struct {
	ev      Event
	seq     uint64
	attempt int
	lastErr string
	next    time.Time
}

// NewMemoryOutbox returns an empty, not durable, outbox.
func NewMemoryOutbox() *MemoryOutbox {
	return &MemoryOutbox{queues: make(map[string]*memQueue)}
}

// Enqueue implements Outbox.
func (m *MemoryOutbox) Enqueue(ctx context.Context, events ...Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ev := range events {
		ev.Body = slices.Clone(ev.Body)
		q := m.queues[ev.TransferID]
		if q == nil {
			q = &memQueue{}
			m.queues[ev.TransferID] = q
		}
		m.seq++
		q.entries = append(q.entries, &memEntry{ev: ev, seq: m.seq})
	}
	return nil
}

// Claim implements Outbox.
func (m *MemoryOutbox) Claim(ctx context.Context, node string, now time.Time, lease time.Duration, limit int) ([]Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	due := m.earliestDue(now, limit)
	out := make([]Delivery, 0, len(due))
	for _, q := range due {
		m.tokens++
		h := q.entries[0]
		q.lease = Lease{TransferID: h.ev.TransferID, EventID: h.ev.ID, Node: node,
			Token: strconv.FormatUint(m.tokens, 10), Expires: now.Add(lease)}
		out = append(out, h.delivery(q.lease))
	}
	return out, nil
}

// earliestDue picks up to limit claimable transfers, earliest due head
// first: one pass keeping the best limit in order (limit is small, the
// number of free workers).
func (m *MemoryOutbox) earliestDue(now time.Time, limit int) []*memQueue {
	if limit <= 0 {
		return nil
	}
	due := make([]*memQueue, 0, limit)
	for _, q := range m.queues {
		if !q.claimable(now) {
			continue
		}
		i, _ := slices.BinarySearchFunc(due, q, dueOrder)
		if i < limit {
			if len(due) == limit {
				due = due[:limit-1]
			}
			due = slices.Insert(due, i, q)
		}
	}
	return due
}

func dueOrder(a, b *memQueue) int {
	ha, hb := a.entries[0], b.entries[0]
	return cmp.Or(ha.next.Compare(hb.next), cmp.Compare(ha.seq, hb.seq))
}

// claimable: the head is due and no live lease holds the transfer.
func (q *memQueue) claimable(now time.Time) bool {
	free := q.lease.Token == "" || !now.Before(q.lease.Expires)
	return free && !q.entries[0].next.After(now)
}

func (e *memEntry) delivery(l Lease) Delivery {
	ev := e.ev
	ev.Body = slices.Clone(ev.Body)
	return Delivery{Event: ev, Attempt: e.attempt, LastError: e.lastErr, NextAttempt: e.next, Lease: l}
}

// held returns the transfer's queue if l is still its lease.
func (m *MemoryOutbox) held(l Lease) (*memQueue, error) {
	q := m.queues[l.TransferID]
	if q == nil || q.lease.Token != l.Token || q.entries[0].ev.ID != l.EventID {
		return nil, ErrLeaseLost
	}
	return q, nil
}

// Done implements Outbox.
func (m *MemoryOutbox) Done(ctx context.Context, l Lease, _ Result) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	q, err := m.held(l)
	if err != nil {
		return err
	}
	q.entries[0] = nil
	q.entries = q.entries[1:]
	q.lease = Lease{}
	if len(q.entries) == 0 {
		delete(m.queues, l.TransferID)
	}
	return nil
}

// Retry implements Outbox.
func (m *MemoryOutbox) Retry(ctx context.Context, l Lease, next time.Time, attempt int, lastErr string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	q, err := m.held(l)
	if err != nil {
		return err
	}
	h := q.entries[0]
	h.next, h.attempt, h.lastErr = next, attempt, lastErr
	q.lease = Lease{}
	return nil
}

// Stats implements Outbox.
func (m *MemoryOutbox) Stats(ctx context.Context) (Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var s Stats
	for _, q := range m.queues {
		for _, e := range q.entries {
			s.Depth++
			if s.Oldest.IsZero() || e.ev.CreatedAt.Before(s.Oldest) {
				s.Oldest = e.ev.CreatedAt
			}
		}
	}
	return s, nil
}

// Pending lists the undelivered events of a transfer, oldest first, with
// their attempt state (the head's Lease is set while it is leased). For
// tests and debugging.
func (m *MemoryOutbox) Pending(transferID string) []Delivery {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.queues[transferID]
	if q == nil {
		return nil
	}
	out := make([]Delivery, 0, len(q.entries))
	for i, e := range q.entries {
		var l Lease
		if i == 0 {
			l = q.lease
		}
		out = append(out, e.delivery(l))
	}
	return out
}

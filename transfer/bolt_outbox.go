package transfer

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/handoff/handoff/webhook"
)

// The embedded store's outbox (webhook.Outbox). Events are appended in the
// transaction of the change that causes them (apply); every event has a
// sequence number from the events bucket, which orders them.
var (
	bucketOutbox      = []byte("outbox")       // seq -> outboxRecord JSON
	bucketOutboxQueue = []byte("outbox-queue") // len16|transfer id|seq: each transfer's events in order
	bucketOutboxDue   = []byte("outbox-due")   // due|seq -> transfer id, heads only (due 0: fresh)
	bucketOutboxAge   = []byte("outbox-age")   // createdAt|seq: the oldest first
	bucketOutboxMeta  = []byte("outbox-meta")  // "depth" -> uint64
)

var outboxBuckets = [][]byte{bucketOutbox, bucketOutboxQueue, bucketOutboxDue, bucketOutboxAge, bucketOutboxMeta}

var keyDepth = []byte("depth")

// outboxRecord is one undelivered event and its attempts so far.
type outboxRecord struct {
	Event     webhook.Event `json:"event"`
	Attempt   int           `json:"attempt,omitempty"`
	LastError string        `json:"lastError,omitempty"`
	Next      time.Time     `json:"next,omitzero"`
}

// boltLeases are the embedded store's outbox leases. They live in memory:
// bbolt locks its file to one process, so no other node can claim, and a
// process that dies takes its leases with it (its restart claims afresh).
type boltLeases struct {
	mu     sync.Mutex
	held   map[string]*boltLease // by transfer id
	tokens uint64
}

type boltLease struct {
	webhook.Lease
	seq uint64
	// closing: Done or Retry is committing; no claim may take the
	// transfer meanwhile, even past the lease's expiry.
	closing bool
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// nanos is t as an index key's time: 0 for the zero time.
func nanos(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano())
}

func seqKey(at time.Time, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(u64(nanos(at)), seq)
}

// queuePrefix starts the queue keys of one transfer (length-prefixed, so
// no id is a prefix of another's keys).
func queuePrefix(id string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(id))), id...)
}

// queueHead is the sequence number of id's oldest event, or false.
func queueHead(tx *bolt.Tx, id string) (uint64, bool) {
	prefix := queuePrefix(id)
	k, _ := tx.Bucket(bucketOutboxQueue).Cursor().Seek(prefix)
	if k == nil || !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[len(prefix):]), true
}

func getRecord(tx *bolt.Tx, seq uint64) (*outboxRecord, error) {
	v := tx.Bucket(bucketOutbox).Get(u64(seq))
	if v == nil {
		return nil, fmt.Errorf("outbox: event %d is missing", seq)
	}
	var r outboxRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("outbox: decode event %d: %w", seq, err)
	}
	return &r, nil
}

func putRecord(tx *bolt.Tx, seq uint64, r *outboxRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketOutbox).Put(u64(seq), v)
}

func addDepth(tx *bolt.Tx, delta int64) error {
	b := tx.Bucket(bucketOutboxMeta)
	var n int64
	if v := b.Get(keyDepth); len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	return b.Put(keyDepth, u64(uint64(max(n+delta, 0))))
}

// enqueueEvent appends ev to its transfer's queue in tx; the head of an
// empty queue is due at once.
func enqueueEvent(tx *bolt.Tx, ev webhook.Event) error {
	seq, err := tx.Bucket(bucketOutbox).NextSequence()
	if err != nil {
		return err
	}
	_, busy := queueHead(tx, ev.TransferID)
	if err := putRecord(tx, seq, &outboxRecord{Event: ev}); err != nil {
		return err
	}
	if err := tx.Bucket(bucketOutboxQueue).Put(binary.BigEndian.AppendUint64(queuePrefix(ev.TransferID), seq), nil); err != nil {
		return err
	}
	if err := tx.Bucket(bucketOutboxAge).Put(seqKey(ev.CreatedAt, seq), nil); err != nil {
		return err
	}
	if !busy {
		if err := tx.Bucket(bucketOutboxDue).Put(seqKey(time.Time{}, seq), []byte(ev.TransferID)); err != nil {
			return err
		}
	}
	return addDepth(tx, 1)
}

// removeHead deletes the event seq, the head of transfer id, and makes
// the transfer's next event due.
func removeHead(tx *bolt.Tx, id string, seq uint64) error {
	r, err := getRecord(tx, seq)
	if err != nil {
		return err
	}
	for _, del := range []struct {
		bucket, key []byte
	}{
		{bucketOutbox, u64(seq)},
		{bucketOutboxQueue, binary.BigEndian.AppendUint64(queuePrefix(id), seq)},
		{bucketOutboxDue, seqKey(r.Next, seq)},
		{bucketOutboxAge, seqKey(r.Event.CreatedAt, seq)},
	} {
		if err := tx.Bucket(del.bucket).Delete(del.key); err != nil {
			return err
		}
	}
	if err := addDepth(tx, -1); err != nil {
		return err
	}
	next, ok := queueHead(tx, id)
	if !ok {
		return nil
	}
	nr, err := getRecord(tx, next)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketOutboxDue).Put(seqKey(nr.Next, next), []byte(id))
}

// reschedule records a failed attempt at the head seq: due again at next.
func reschedule(tx *bolt.Tx, id string, seq uint64, next time.Time, attempt int, lastErr string) error {
	r, err := getRecord(tx, seq)
	if err != nil {
		return err
	}
	due := tx.Bucket(bucketOutboxDue)
	if err := due.Delete(seqKey(r.Next, seq)); err != nil {
		return err
	}
	r.Next, r.Attempt, r.LastError = next, attempt, lastErr
	if err := putRecord(tx, seq, r); err != nil {
		return err
	}
	return due.Put(seqKey(next, seq), []byte(id))
}

// Enqueue implements webhook.Outbox.
func (s *BoltStore) Enqueue(ctx context.Context, events ...webhook.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.commits.do(func(tx *bolt.Tx) error {
		for _, ev := range events {
			if err := enqueueEvent(tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		s.webhooks.notify(len(events))
	}
	return err
}

// claimable is one due head found by Claim.
type claimable struct {
	seq uint64
	rec *outboxRecord
}

// Claim implements webhook.Outbox: the due heads in due order, skipping
// the transfers whose lease lives.
func (s *BoltStore) Claim(ctx context.Context, node string, now time.Time, lease time.Duration, limit int) ([]webhook.Delivery, error) {
	if err := ctx.Err(); err != nil || limit <= 0 {
		return nil, err
	}
	l := &s.leases
	l.mu.Lock()
	defer l.mu.Unlock()
	var found []claimable
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutboxDue).Cursor()
		for k, v := c.First(); k != nil && len(found) < limit; k, v = c.Next() {
			if binary.BigEndian.Uint64(k) > nanos(now) {
				break
			}
			if h := l.held[string(v)]; h != nil && (h.closing || now.Before(h.Expires)) {
				continue
			}
			seq := binary.BigEndian.Uint64(k[8:])
			r, err := getRecord(tx, seq)
			if err != nil {
				return err
			}
			found = append(found, claimable{seq, r})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]webhook.Delivery, 0, len(found))
	for _, f := range found {
		l.tokens++
		ls := webhook.Lease{TransferID: f.rec.Event.TransferID, EventID: f.rec.Event.ID, Node: node,
			Token: strconv.FormatUint(l.tokens, 10), Expires: now.Add(lease)}
		l.held[ls.TransferID] = &boltLease{Lease: ls, seq: f.seq}
		out = append(out, webhook.Delivery{Event: f.rec.Event, Attempt: f.rec.Attempt, LastError: f.rec.LastError,
			NextAttempt: f.rec.Next, Lease: ls})
	}
	return out, nil
}

// settle runs write, the outcome of the claim ls, in a transaction: the
// lease must still be the transfer's, and stays closed to other claims
// until the commit; then it is released (or, if write failed, left to run
// out).
func (s *BoltStore) settle(ls webhook.Lease, write func(tx *bolt.Tx, seq uint64) error) error {
	l := &s.leases
	l.mu.Lock()
	h := l.held[ls.TransferID]
	if h == nil || h.Token != ls.Token || h.EventID != ls.EventID || h.closing {
		l.mu.Unlock()
		return webhook.ErrLeaseLost
	}
	h.closing = true
	l.mu.Unlock()
	err := s.commits.do(func(tx *bolt.Tx) error { return write(tx, h.seq) })
	l.mu.Lock()
	defer l.mu.Unlock()
	h.closing = false
	if err == nil && l.held[ls.TransferID] == h {
		delete(l.held, ls.TransferID)
	}
	return err
}

// Done implements webhook.Outbox.
func (s *BoltStore) Done(ctx context.Context, ls webhook.Lease, _ webhook.Result) error {
	return s.settle(ls, func(tx *bolt.Tx, seq uint64) error { return removeHead(tx, ls.TransferID, seq) })
}

// Retry implements webhook.Outbox.
func (s *BoltStore) Retry(ctx context.Context, ls webhook.Lease, next time.Time, attempt int, lastErr string) error {
	return s.settle(ls, func(tx *bolt.Tx, seq uint64) error {
		return reschedule(tx, ls.TransferID, seq, next, attempt, lastErr)
	})
}

// Stats implements webhook.Outbox.
func (s *BoltStore) Stats(ctx context.Context) (webhook.Stats, error) {
	var st webhook.Stats
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketOutboxMeta).Get(keyDepth); len(v) == 8 {
			st.Depth = int(binary.BigEndian.Uint64(v))
		}
		if k, _ := tx.Bucket(bucketOutboxAge).Cursor().First(); len(k) == 16 && st.Depth > 0 {
			st.Oldest = time.Unix(0, int64(binary.BigEndian.Uint64(k))).UTC()
		}
		return nil
	})
	return st, err
}

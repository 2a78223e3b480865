package transfer

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BoltOptions tunes the embedded store.
type BoltOptions struct {
	// Quarantine is how long a number rests after its lease ends before it
	// can be leased again, so a late call for an old transfer never reaches
	// a new one.
	Quarantine time.Duration
	// NoSync skips fsync (benchmarks of the logic only; never in production).
	NoSync bool
	// Webhooks, when set, has every change write its webhook events to the
	// store's outbox in its transaction (the store is a webhook.Outbox).
	Webhooks *Webhooks
}

// BoltStore is the embedded, single-file, persistent Store. Every write is a
// bbolt transaction committed (fsync) before it returns, so an acknowledged
// transfer survives SIGKILL. Concurrent writes are grouped into one commit.
type BoltStore struct {
	db         *bolt.DB
	quarantine time.Duration
	webhooks   *Webhooks
	leases     boltLeases
	records    *recordCache // decoded transfers (bolt_cache.go)
	commits    *groupCommit // every write (bolt_commit.go)
}

var (
	bucketTransfers = []byte("transfers")
	bucketExpiry    = []byte("expiry")  // expiresAt|id of ACTIVE transfers
	bucketPools     = []byte("pools")   // country -> bucket of number -> numberRecord
	bucketNumberIdx = []byte("numbers") // number -> country
	bucketCounts    = []byte("counts")  // status -> uint64
	bucketEnded     = []byte("ended")   // endedAt|id of COMPLETED and EXPIRED transfers
	// bucketByFree indexes each country's configured (not retired) numbers
	// by freeAt|number, so a lease takes the longest-rested one in O(log n).
	// It is rebuilt from bucketPools whenever the store opens.
	bucketByFree = []byte("byfree")
)

// OpenBolt opens (or creates) the store file at path.
func OpenBolt(path string, opts BoltOptions) (*BoltStore, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	// A 64 MiB map holds a pool of 100 000 numbers (11 MiB of pages) and
	// much more before bbolt must remap, which copies every key a write
	// transaction holds: growing from bbolt's 32 KiB by doubling took a
	// quarter of that pool's set-up. It is address space, not memory.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, NoSync: opts.NoSync, InitialMmapSize: 64 << 20})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range append([][]byte{bucketTransfers, bucketExpiry, bucketPools, bucketNumberIdx, bucketCounts, bucketEnded}, outboxBuckets...) {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return rebuildByFree(tx)
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &BoltStore{db: db, quarantine: opts.Quarantine, webhooks: opts.Webhooks, records: newRecordCache(), commits: &groupCommit{db: db},
		leases: boltLeases{held: map[string]*boltLease{}}}, nil
}

// timeKey orders an index by time, then id.
func timeKey(at time.Time, id string) []byte {
	k := make([]byte, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(at.UnixNano()))
	copy(k[8:], id)
	return k
}

func (s *BoltStore) getTransfer(tx *bolt.Tx, id string) (*Transfer, error) {
	v := tx.Bucket(bucketTransfers).Get([]byte(id))
	if v == nil {
		return nil, ErrNotFound
	}
	return s.records.decode(id, v)
}

func (s *BoltStore) putTransfer(tx *bolt.Tx, t *Transfer) error {
	v, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketTransfers).Put([]byte(t.ID), v); err != nil {
		return err
	}
	s.records.put(t.ID, t.Status, v)
	return nil
}

func addCount(tx *bolt.Tx, s Status, delta int64) error {
	b := tx.Bucket(bucketCounts)
	var n int64
	if v := b.Get([]byte(s)); len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	n += delta
	if n < 0 {
		n = 0
	}
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, uint64(n))
	return b.Put([]byte(s), v)
}

// Create implements Store.
func (s *BoltStore) Create(ctx context.Context, t *Transfer, now time.Time) (*Transfer, error) {
	var out *Transfer
	events := 0
	err := s.commits.do(func(tx *bolt.Tx) error {
		out = nil
		if existing, err := s.getTransfer(tx, t.ID); err == nil {
			out = existing
			return untouched{ErrExists}
		}
		p := planCreate(t.Clone(), now, s.quarantine)
		if err := s.planEvents(&p, nil, now); err != nil {
			return untouched{err}
		}
		if err := s.apply(tx, p); err != nil {
			return err
		}
		out, events = p.Record, len(p.Events)
		return nil
	})
	if errors.Is(err, ErrExists) {
		return out, ErrExists
	}
	if err != nil {
		return nil, err
	}
	s.webhooks.notify(events)
	return out, nil
}

// planEvents adds to p the webhook events of the change from old.
func (s *BoltStore) planEvents(p *plan, old *Transfer, now time.Time) (err error) {
	p.Events, err = s.webhooks.events(old, p.Record, now)
	return err
}

// apply writes p in tx: the number lease it takes or ends, the record, the
// index entries it moves and its webhook events.
func (s *BoltStore) apply(tx *bolt.Tx, p plan) error {
	t := p.Record
	if p.Lease != nil {
		number, err := leaseNumber(tx, p.Lease)
		if err != nil {
			return err
		}
		t.PhoneNumber.TransferNumber = number
	}
	if p.Release != nil {
		if err := releaseNumber(tx, p.Release); err != nil {
			return err
		}
	}
	if err := s.putTransfer(tx, t); err != nil {
		return err
	}
	for _, e := range p.Events {
		if err := enqueueEvent(tx, e.withNumber(leased(t))); err != nil {
			return err
		}
	}
	if err := moveCount(tx, p.CountFrom, p.CountTo); err != nil {
		return err
	}
	if err := moveKey(tx.Bucket(bucketExpiry), t.ID, p.ExpiryFrom, p.ExpiryTo); err != nil {
		return err
	}
	if p.Ended.IsZero() {
		return nil
	}
	return tx.Bucket(bucketEnded).Put(timeKey(p.Ended, t.ID), nil)
}

// leased is t's number, "" if it has none.
func leased(t *Transfer) string {
	if t.PhoneNumber == nil {
		return ""
	}
	return t.PhoneNumber.TransferNumber
}

// moveCount counts one transfer less of status from and one more of to
// ("" is none).
func moveCount(tx *bolt.Tx, from, to Status) error {
	if from != "" {
		if err := addCount(tx, from, -1); err != nil {
			return err
		}
	}
	if to == "" {
		return nil
	}
	return addCount(tx, to, 1)
}

// moveKey moves id's entry in the time index b from one time to another
// (the zero time is "not in it").
func moveKey(b *bolt.Bucket, id string, from, to time.Time) error {
	if !from.IsZero() {
		if err := b.Delete(timeKey(from, id)); err != nil {
			return err
		}
	}
	if to.IsZero() {
		return nil
	}
	return b.Put(timeKey(to, id), nil)
}

// Get implements Store.
func (s *BoltStore) Get(ctx context.Context, id string) (*Transfer, error) {
	var out *Transfer
	err := s.db.View(func(tx *bolt.Tx) error {
		t, err := s.getTransfer(tx, id)
		out = t
		return err
	})
	return out, err
}

// FindByNumber implements Store.
func (s *BoltStore) FindByNumber(ctx context.Context, number string, now time.Time) (*Transfer, error) {
	var out *Transfer
	err := s.db.View(func(tx *bolt.Tx) error {
		country := tx.Bucket(bucketNumberIdx).Get([]byte(number))
		if country == nil {
			return ErrNotFound
		}
		pool := tx.Bucket(bucketPools).Bucket(country)
		if pool == nil {
			return ErrNotFound
		}
		r := unmarshalNumber(pool.Get([]byte(number)))
		if r.transferID == "" || r.stateAt(now) != "leased" {
			return ErrNotFound
		}
		t, err := s.getTransfer(tx, r.transferID)
		out = t
		return err
	})
	return out, err
}

// Update implements Store.
func (s *BoltStore) Update(ctx context.Context, id string, now time.Time, fn func(*Transfer) error) (*Transfer, error) {
	var out *Transfer
	events := 0
	err := s.commits.do(func(tx *bolt.Tx) error {
		old, err := s.getTransfer(tx, id)
		if err != nil {
			return untouched{err}
		}
		t := old.Clone()
		if err := fn(t); err != nil {
			return untouched{err}
		}
		p := planUpdate(old, t, now, s.quarantine)
		if err := s.planEvents(&p, old, now); err != nil {
			return untouched{err}
		}
		out, events = t, len(p.Events)
		return s.apply(tx, p)
	})
	if err != nil {
		return nil, err
	}
	s.webhooks.notify(events)
	return out, nil
}

// Expired implements Store.
func (s *BoltStore) Expired(ctx context.Context, now time.Time, limit int) ([]string, error) {
	var ids []string
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketExpiry).Cursor()
		for k, _ := c.First(); k != nil && len(ids) < limit; k, _ = c.Next() {
			if len(k) < 8 || int64(binary.BigEndian.Uint64(k)) > now.UnixNano() {
				break
			}
			ids = append(ids, string(k[8:]))
		}
		return nil
	})
	return ids, err
}

// Purge implements Store.
func (s *BoltStore) Purge(ctx context.Context, endedBefore time.Time, limit int) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		n = 0
		ended := tx.Bucket(bucketEnded)
		var done [][]byte
		c := ended.Cursor()
		for k, _ := c.First(); k != nil && len(done) < limit; k, _ = c.Next() {
			if len(k) < 8 || int64(binary.BigEndian.Uint64(k)) >= endedBefore.UnixNano() {
				break
			}
			done = append(done, bytes.Clone(k))
		}
		for _, k := range done {
			if err := ended.Delete(k); err != nil {
				return err
			}
			t, err := s.getTransfer(tx, string(k[8:]))
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if t.EndedAt().IsZero() {
				continue
			}
			if err := tx.Bucket(bucketTransfers).Delete([]byte(t.ID)); err != nil {
				return err
			}
			if err := addCount(tx, t.Status, -1); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// Counts implements Store.
func (s *BoltStore) Counts(ctx context.Context) (map[Status]int, error) {
	out := map[Status]int{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCounts).ForEach(func(k, v []byte) error {
			if len(v) == 8 {
				out[Status(k)] = int(binary.BigEndian.Uint64(v))
			}
			return nil
		})
	})
	return out, err
}

// Ping implements Store.
func (s *BoltStore) Ping(ctx context.Context) error {
	return s.db.View(func(*bolt.Tx) error { return nil })
}

// Close implements Store.
func (s *BoltStore) Close() error { return s.db.Close() }

// OngoingOn lists up to limit transfers answered by node that it still
// owes an outcome: ONGOING, or returning (see ongoingNode). The embedded
// store serves one node and this runs once at start-up, so a scan is
// enough.
func (s *BoltStore) OngoingOn(ctx context.Context, node string, limit int) ([]string, error) {
	var ids []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTransfers).ForEach(func(k, v []byte) error {
			if len(ids) >= limit || !bytes.Contains(v, []byte(`"status":"ONGOING"`)) && !bytes.Contains(v, []byte(`"endReason":"agent_finished"`)) {
				return nil
			}
			var t Transfer
			if err := json.Unmarshal(v, &t); err != nil {
				return nil
			}
			if ongoingNode(&t) == node {
				ids = append(ids, t.ID)
			}
			return nil
		})
	})
	return ids, err
}

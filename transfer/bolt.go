package transfer

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
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
}

// BoltStore is the embedded, single-file, persistent Store. Every write is a
// bbolt transaction committed (fsync) before it returns, so an acknowledged
// transfer survives SIGKILL. Concurrent writes are grouped into one commit.
type BoltStore struct {
	db         *bolt.DB
	quarantine time.Duration
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
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, NoSync: opts.NoSync})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// Group commits: concurrent API writes share one fsync.
	db.MaxBatchDelay = 2 * time.Millisecond
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketTransfers, bucketExpiry, bucketPools, bucketNumberIdx, bucketCounts, bucketEnded} {
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
	return &BoltStore{db: db, quarantine: opts.Quarantine}, nil
}

// numberRecord is a pool number's lease state. A number is leased while
// now < heldUntil, in quarantine until freeAt, and free after that.
type numberRecord struct {
	heldUntil  time.Time
	freeAt     time.Time
	retired    bool // removed from the configuration while busy
	transferID string
}

func (r numberRecord) marshal() []byte {
	b := make([]byte, 17+len(r.transferID))
	binary.BigEndian.PutUint64(b[0:], uint64(r.heldUntil.UnixNano()))
	binary.BigEndian.PutUint64(b[8:], uint64(r.freeAt.UnixNano()))
	if r.retired {
		b[16] = 1
	}
	copy(b[17:], r.transferID)
	return b
}

func unmarshalNumber(b []byte) numberRecord {
	if len(b) < 17 {
		return numberRecord{}
	}
	return numberRecord{
		heldUntil:  time.Unix(0, int64(binary.BigEndian.Uint64(b[0:]))),
		freeAt:     time.Unix(0, int64(binary.BigEndian.Uint64(b[8:]))),
		retired:    b[16] == 1,
		transferID: string(b[17:]),
	}
}

func (r numberRecord) stateAt(now time.Time) string {
	switch {
	case now.Before(r.heldUntil):
		return "leased"
	case now.Before(r.freeAt):
		return "quarantined"
	case r.retired:
		return "retired"
	default:
		return "free"
	}
}

func expiryKey(t *Transfer) []byte { return timeKey(t.ExpiresAt, t.ID) }

// timeKey orders an index by time, then id.
func timeKey(at time.Time, id string) []byte {
	k := make([]byte, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(at.UnixNano()))
	copy(k[8:], id)
	return k
}

func getTransfer(tx *bolt.Tx, id string) (*Transfer, error) {
	v := tx.Bucket(bucketTransfers).Get([]byte(id))
	if v == nil {
		return nil, ErrNotFound
	}
	var t Transfer
	if err := json.Unmarshal(v, &t); err != nil {
		return nil, fmt.Errorf("decode transfer %q: %w", id, err)
	}
	return &t, nil
}

func putTransfer(tx *bolt.Tx, t *Transfer) error {
	v, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketTransfers).Put([]byte(t.ID), v)
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
	err := s.db.Batch(func(tx *bolt.Tx) error {
		out = nil
		if existing, err := getTransfer(tx, t.ID); err == nil {
			out = existing
			return ErrExists
		}
		rec := t.Clone()
		if rec.Type == TypePhoneNumber {
			number, err := s.lease(tx, rec, now)
			if err != nil {
				return err
			}
			rec.PhoneNumber.TransferNumber = number
		}
		if err := putTransfer(tx, rec); err != nil {
			return err
		}
		if err := tx.Bucket(bucketExpiry).Put(expiryKey(rec), nil); err != nil {
			return err
		}
		out = rec
		return addCount(tx, rec.Status, 1)
	})
	if errors.Is(err, ErrExists) {
		return out, ErrExists
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// lease picks the free number of the country that has rested longest.
func (s *BoltStore) lease(tx *bolt.Tx, t *Transfer, now time.Time) (string, error) {
	country := []byte(t.PhoneNumber.Country)
	pool := tx.Bucket(bucketPools).Bucket(country)
	byFree := tx.Bucket(bucketByFree).Bucket(country)
	if pool == nil || byFree == nil {
		return "", ErrUnknownCountry
	}
	k, _ := byFree.Cursor().First()
	if k == nil {
		return "", ErrUnknownCountry // every number retired
	}
	if int64(binary.BigEndian.Uint64(k)) > now.UnixNano() {
		return "", ErrNoNumber // even the longest-rested one is still busy
	}
	number := k[8:]
	old := unmarshalNumber(pool.Get(number))
	r := numberRecord{heldUntil: t.ExpiresAt, freeAt: t.ExpiresAt.Add(s.quarantine), transferID: t.ID}
	return string(number), putNumber(tx, country, number, &old, r)
}

func byFreeKey(freeAt time.Time, number []byte) []byte {
	k := make([]byte, 8+len(number))
	// A never-leased number has the zero time, outside UnixNano's range:
	// every time before 1970 sorts as 0, first.
	binary.BigEndian.PutUint64(k, uint64(max(freeAt.UnixNano(), 0)))
	copy(k[8:], number)
	return k
}

// putNumber writes a number's record and keeps the free index in step: old
// is the record it replaces (nil for a new number).
func putNumber(tx *bolt.Tx, country, number []byte, old *numberRecord, r numberRecord) error {
	byFree, err := tx.Bucket(bucketByFree).CreateBucketIfNotExists(country)
	if err != nil {
		return err
	}
	if old != nil && !old.retired {
		if err := byFree.Delete(byFreeKey(old.freeAt, number)); err != nil {
			return err
		}
	}
	if !r.retired {
		if err := byFree.Put(byFreeKey(r.freeAt, number), nil); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketPools).Bucket(country).Put(number, r.marshal())
}

// rebuildByFree derives the free index from the pools. Its keys lead with
// the free time, not the number, so they are sorted before they are put
// (see SetNumbers).
func rebuildByFree(tx *bolt.Tx) error {
	if tx.Bucket(bucketByFree) != nil {
		if err := tx.DeleteBucket(bucketByFree); err != nil {
			return err
		}
	}
	root, err := tx.CreateBucket(bucketByFree)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketPools).ForEach(func(country, _ []byte) error {
		byFree, err := root.CreateBucket(country)
		if err != nil {
			return err
		}
		var keys [][]byte
		err = tx.Bucket(bucketPools).Bucket(country).ForEach(func(number, v []byte) error {
			if r := unmarshalNumber(v); !r.retired {
				keys = append(keys, byFreeKey(r.freeAt, number))
			}
			return nil
		})
		if err != nil {
			return err
		}
		slices.SortFunc(keys, bytes.Compare)
		for _, k := range keys {
			if err := byFree.Put(k, nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// Get implements Store.
func (s *BoltStore) Get(ctx context.Context, id string) (*Transfer, error) {
	var out *Transfer
	err := s.db.View(func(tx *bolt.Tx) error {
		t, err := getTransfer(tx, id)
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
		t, err := getTransfer(tx, r.transferID)
		out = t
		return err
	})
	return out, err
}

// Update implements Store.
func (s *BoltStore) Update(ctx context.Context, id string, now time.Time, fn func(*Transfer) error) (*Transfer, error) {
	var out *Transfer
	err := s.db.Batch(func(tx *bolt.Tx) error {
		old, err := getTransfer(tx, id)
		if err != nil {
			return err
		}
		t := old.Clone()
		if err := fn(t); err != nil {
			return err
		}
		if old.Status != t.Status {
			if err := addCount(tx, old.Status, -1); err != nil {
				return err
			}
			if err := addCount(tx, t.Status, 1); err != nil {
				return err
			}
		}
		if old.EndedAt().IsZero() && !t.EndedAt().IsZero() {
			if err := tx.Bucket(bucketEnded).Put(timeKey(t.EndedAt(), t.ID), nil); err != nil {
				return err
			}
		}
		if old.Status == StatusActive && t.Status != StatusActive {
			if err := tx.Bucket(bucketExpiry).Delete(expiryKey(old)); err != nil {
				return err
			}
			if err := s.release(tx, t, now); err != nil {
				return err
			}
		}
		out = t
		return putTransfer(tx, t)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// release ends t's number lease at now (or at its expiry, if earlier) and
// starts the quarantine from there.
func (s *BoltStore) release(tx *bolt.Tx, t *Transfer, now time.Time) error {
	if t.PhoneNumber == nil || t.PhoneNumber.TransferNumber == "" {
		return nil
	}
	pool := tx.Bucket(bucketPools).Bucket([]byte(t.PhoneNumber.Country))
	if pool == nil {
		return nil
	}
	key := []byte(t.PhoneNumber.TransferNumber)
	old := unmarshalNumber(pool.Get(key))
	if old.transferID != t.ID {
		return nil
	}
	end := now
	if t.ExpiresAt.Before(end) {
		end = t.ExpiresAt
	}
	r := old
	if end.Before(r.heldUntil) {
		r.heldUntil = end
		r.freeAt = end.Add(s.quarantine)
	}
	return putNumber(tx, []byte(t.PhoneNumber.Country), key, &old, r)
}

// SetNumbers implements Store, in one transaction. bbolt splits a page only
// at commit, so keys put in random order into one bucket within a
// transaction cost a copy of the growing page each (quadratic: 99 s for
// 100 000 numbers); every put below goes in key order.
func (s *BoltStore) SetNumbers(ctx context.Context, pools map[string][]string, now time.Time) error {
	wanted := map[string]string{}
	for country, numbers := range pools {
		for _, n := range numbers {
			wanted[n] = country
		}
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		var countries [][]byte
		if err := tx.Bucket(bucketPools).ForEach(func(k, _ []byte) error {
			countries = append(countries, bytes.Clone(k))
			return nil
		}); err != nil {
			return err
		}
		for _, country := range countries {
			if err := removeUnwanted(tx, country, wanted, now); err != nil {
				return err
			}
		}
		return addWanted(tx, wanted)
	})
}

// removeUnwanted retires the country's numbers that are no longer
// configured there while they are leased or in quarantine, and drops them
// once free.
func removeUnwanted(tx *bolt.Tx, country []byte, wanted map[string]string, now time.Time) error {
	pool := tx.Bucket(bucketPools).Bucket(country)
	var drop, retire [][]byte
	err := pool.ForEach(func(k, v []byte) error {
		if wanted[string(k)] == string(country) {
			return nil
		}
		switch unmarshalNumber(v).stateAt(now) {
		case "free", "retired":
			drop = append(drop, bytes.Clone(k))
		default:
			retire = append(retire, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range retire {
		old := unmarshalNumber(pool.Get(k))
		r := old
		r.retired = true
		if err := putNumber(tx, country, k, &old, r); err != nil {
			return err
		}
	}
	for _, k := range drop {
		old := unmarshalNumber(pool.Get(k))
		if !old.retired {
			if err := tx.Bucket(bucketByFree).Bucket(country).Delete(byFreeKey(old.freeAt, k)); err != nil {
				return err
			}
		}
		if err := pool.Delete(k); err != nil {
			return err
		}
		if err := tx.Bucket(bucketNumberIdx).Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// addWanted adds the numbers not yet in their country's pool, in number
// order, and un-retires those configured again.
func addWanted(tx *bolt.Tx, wanted map[string]string) error {
	root, idx := tx.Bucket(bucketPools), tx.Bucket(bucketNumberIdx)
	for _, n := range slices.Sorted(maps.Keys(wanted)) {
		country, number := []byte(wanted[n]), []byte(n)
		pool, err := root.CreateBucketIfNotExists(country)
		if err != nil {
			return err
		}
		if prev := idx.Get(number); prev != nil && !bytes.Equal(prev, country) {
			return fmt.Errorf("number %s is configured for %s and %s", n, prev, country)
		}
		if v := pool.Get(number); v != nil {
			if old := unmarshalNumber(v); old.retired {
				r := old
				r.retired = false
				if err := putNumber(tx, country, number, &old, r); err != nil {
					return err
				}
			}
			continue
		}
		if err := putNumber(tx, country, number, nil, numberRecord{}); err != nil {
			return err
		}
		if err := idx.Put(number, country); err != nil {
			return err
		}
	}
	return nil
}

// PoolStats implements Store.
func (s *BoltStore) PoolStats(ctx context.Context, now time.Time) (map[string]PoolStats, error) {
	out := map[string]PoolStats{}
	err := s.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketPools)
		return root.ForEach(func(country, _ []byte) error {
			var st PoolStats
			err := root.Bucket(country).ForEach(func(_, v []byte) error {
				switch unmarshalNumber(v).stateAt(now) {
				case "leased":
					st.Leased++
				case "quarantined":
					st.Quarantined++
				case "free":
					st.Free++
				}
				return nil
			})
			out[string(country)] = st
			return err
		})
	})
	return out, err
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
			t, err := getTransfer(tx, string(k[8:]))
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

// OngoingOn lists up to limit ONGOING transfers answered by node. The
// embedded store serves one node and this runs once at start-up, so a scan
// is enough.
func (s *BoltStore) OngoingOn(ctx context.Context, node string, limit int) ([]string, error) {
	var ids []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTransfers).ForEach(func(k, v []byte) error {
			if len(ids) >= limit || !bytes.Contains(v, []byte(`"status":"ONGOING"`)) {
				return nil
			}
			var t Transfer
			if err := json.Unmarshal(v, &t); err != nil {
				return nil
			}
			if t.Status == StatusOngoing && t.Node == node {
				ids = append(ids, t.ID)
			}
			return nil
		})
	})
	return ids, err
}

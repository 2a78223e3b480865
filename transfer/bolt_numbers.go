package transfer

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

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

// leaseNumber gives l.Holder the free number of l.Country that has rested
// longest, and returns it.
func leaseNumber(tx *bolt.Tx, l *numberLease) (string, error) {
	country := []byte(l.Country)
	pool := tx.Bucket(bucketPools).Bucket(country)
	byFree := tx.Bucket(bucketByFree).Bucket(country)
	if pool == nil || byFree == nil {
		return "", ErrUnknownCountry
	}
	k, _ := byFree.Cursor().First()
	if k == nil {
		return "", ErrUnknownCountry // every number retired
	}
	if int64(binary.BigEndian.Uint64(k)) > l.Now.UnixNano() {
		return "", ErrNoNumber // even the longest-rested one is still busy
	}
	number := bytes.Clone(k[8:])
	old := unmarshalNumber(pool.Get(number))
	r := numberRecord{heldUntil: l.HeldUntil, freeAt: l.FreeAt, transferID: l.Holder}
	return string(number), putNumber(tx, country, number, &old, r)
}

// releaseNumber ends the lease of r.Number early, if r applies to it.
func releaseNumber(tx *bolt.Tx, r *numberLease) error {
	country, number := []byte(r.Country), []byte(r.Number)
	pool := tx.Bucket(bucketPools).Bucket(country)
	if pool == nil {
		return nil
	}
	old := unmarshalNumber(pool.Get(number))
	if !r.Shortens(old.transferID, old.heldUntil) {
		return nil
	}
	rec := old
	rec.heldUntil, rec.freeAt = r.HeldUntil, r.FreeAt
	return putNumber(tx, country, number, &old, rec)
}

func byFreeKey(freeAt time.Time, number []byte) []byte {
	k := make([]byte, 8+len(number))
	// A never-leased number has the zero time, outside UnixNano's range:
	// every time before 1970 sorts as 0, first.
	binary.BigEndian.PutUint64(k, uint64(max(freeAt.UnixNano(), 0)))
	copy(k[8:], number)
	return k
}

// appendFill is how full bbolt fills the pages of a bucket whose keys
// arrive in key order (the pool and the number index at set-up, and the
// free index, whose keys grow with time: a lease appends): full, where the
// default split (half) would leave every page half empty.
const appendFill = 1.0

// putNumber writes a number's record and keeps the free index in step: old
// is the record it replaces (nil for a new number).
func putNumber(tx *bolt.Tx, country, number []byte, old *numberRecord, r numberRecord) error {
	byFree, err := tx.Bucket(bucketByFree).CreateBucketIfNotExists(country)
	if err != nil {
		return err
	}
	byFree.FillPercent = appendFill // its keys grow with time: a lease appends
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
		byFree.FillPercent = appendFill
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

// SetNumbers implements Store, in one transaction that reads each pool
// once and writes only what changes. bbolt splits a page only at commit,
// so keys put in random order into one bucket within a transaction cost a
// copy of the growing page each (quadratic: 99 s for 100 000 numbers);
// every put below goes in key order.
func (s *BoltStore) SetNumbers(ctx context.Context, pools map[string][]string, now time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		missing := map[string]string{} // number -> country, until found in place
		for country, numbers := range pools {
			for _, n := range numbers {
				missing[n] = country
			}
		}
		var countries [][]byte
		if err := tx.Bucket(bucketPools).ForEach(func(k, _ []byte) error {
			countries = append(countries, bytes.Clone(k))
			return nil
		}); err != nil {
			return err
		}
		for _, country := range countries {
			if err := settlePool(tx, country, missing, now); err != nil {
				return err
			}
		}
		return addNumbers(tx, missing)
	})
}

// settlePool goes once through a country's pool. It retires the numbers
// no longer configured there while they are leased or in quarantine, drops
// them once free, un-retires those configured again, and deletes from
// missing every number it finds in place (a number is in one pool at most).
func settlePool(tx *bolt.Tx, country []byte, missing map[string]string, now time.Time) error {
	pool := tx.Bucket(bucketPools).Bucket(country)
	var drop, retire, back [][]byte
	err := pool.ForEach(func(k, v []byte) error {
		r := unmarshalNumber(v)
		switch {
		case missing[string(k)] == string(country):
			delete(missing, string(k))
			if r.retired {
				back = append(back, bytes.Clone(k))
			}
		case r.stateAt(now) == "free" || r.stateAt(now) == "retired":
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
		if err := setRetired(tx, country, k, true); err != nil {
			return err
		}
	}
	for _, k := range back {
		if err := setRetired(tx, country, k, false); err != nil {
			return err
		}
	}
	for _, k := range drop {
		if err := dropNumber(tx, country, k); err != nil {
			return err
		}
	}
	return nil
}

func setRetired(tx *bolt.Tx, country, number []byte, retired bool) error {
	old := unmarshalNumber(tx.Bucket(bucketPools).Bucket(country).Get(number))
	r := old
	r.retired = retired
	return putNumber(tx, country, number, &old, r)
}

func dropNumber(tx *bolt.Tx, country, number []byte) error {
	pool := tx.Bucket(bucketPools).Bucket(country)
	if old := unmarshalNumber(pool.Get(number)); !old.retired {
		if err := tx.Bucket(bucketByFree).Bucket(country).Delete(byFreeKey(old.freeAt, number)); err != nil {
			return err
		}
	}
	if err := pool.Delete(number); err != nil {
		return err
	}
	return tx.Bucket(bucketNumberIdx).Delete(number)
}

// addNumbers adds the numbers (number -> country) to their pools, in
// number order; one still held by another country is refused.
func addNumbers(tx *bolt.Tx, numbers map[string]string) error {
	root, idx := tx.Bucket(bucketPools), tx.Bucket(bucketNumberIdx)
	idx.FillPercent = appendFill
	for _, n := range slices.Sorted(maps.Keys(numbers)) {
		country, number := []byte(numbers[n]), []byte(n)
		if prev := idx.Get(number); prev != nil && !bytes.Equal(prev, country) {
			return fmt.Errorf("number %s is configured for %s and %s", n, prev, country)
		}
		pool, err := root.CreateBucketIfNotExists(country)
		if err != nil {
			return err
		}
		pool.FillPercent = appendFill
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

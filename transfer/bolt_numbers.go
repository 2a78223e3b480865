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

package transfer

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/handoff/handoff/internal/redistest"
)

// BenchmarkPoolSetUp times what start-up and reload do with a pool of
// 10 000 and 100 000 numbers (one range, as configured), on the embedded
// store (fsync on) and on a local Redis:
//
//   - first: open an empty store and set the pool up (the first start);
//   - restart: open a store that already holds the pool, every number
//     leased once before and free again at its own time (as after a day of
//     calls), and set the same pool again (a restart; a reload is the same
//     SetNumbers without the open).
//
// One op is one open + Service.SetNumbers (ExpandPools included). It also
// reports the store's size per number: store-B/number is the bolt file's
// pages in use (the file itself grows in steps of up to 16 MiB), or the
// Redis used_memory that the pool added.
//
//	go test -run '^$' -bench BenchmarkPoolSetUp -benchtime 3x ./transfer/
func BenchmarkPoolSetUp(b *testing.B) {
	for _, kind := range []string{"bolt", "redis"} {
		for _, n := range []int{10000, 100000} {
			for _, start := range []string{"first", "restart"} {
				b.Run(fmt.Sprintf("%s/%d/%s", kind, n, start), func(b *testing.B) {
					benchPoolSetUp(b, kind, n, start == "restart")
				})
			}
		}
	}
}

// poolPlace opens the same store each time, and empties it.
type poolPlace struct {
	open  func() (Store, error)
	reset func()
	size  func(Store) int64 // bytes the store holds
}

func benchPoolSetUp(b *testing.B, kind string, n int, restart bool) {
	place := newPoolPlace(b, kind)
	pools := map[string][]string{"US": {fmt.Sprintf("+1555%07d-+1555%07d", 0, n-1)}}
	ctx := context.Background()
	setUp := func() Store {
		st, err := place.open()
		if err != nil {
			b.Fatal(err)
		}
		svc := NewService(st, ServiceConfig{Logger: slog.New(slog.DiscardHandler)})
		if err := svc.SetNumbers(ctx, pools); err != nil {
			b.Fatal(err)
		}
		return st
	}
	var perNumber float64
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		place.reset()
		base := place.size(nil)
		if restart {
			st := setUp()
			scatterFreeTimes(b, st)
			st.Close()
		}
		b.StartTimer()
		st := setUp()
		b.StopTimer()
		perNumber = float64(place.size(st)-base) / float64(n)
		st.Close()
	}
	b.ReportMetric(perNumber, "store-B/number")
}

func newPoolPlace(b *testing.B, kind string) poolPlace {
	if kind == "bolt" {
		path := b.TempDir() + "/handoff.db"
		return poolPlace{
			open:  func() (Store, error) { return OpenBolt(path, BoltOptions{Quarantine: time.Minute}) },
			reset: func() { _ = os.Remove(path) },
			size: func(st Store) int64 {
				var pages int64
				if st != nil {
					_ = st.(*BoltStore).db.View(func(tx *bolt.Tx) error { pages = tx.Size(); return nil })
				}
				return pages
			},
		}
	}
	url := redistest.Start(b).URL()
	open := func() (Store, error) {
		return OpenRedis(context.Background(), url, RedisOptions{Quarantine: time.Minute})
	}
	onClient := func(f func(*RedisStore)) {
		st, err := open()
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		f(st.(*RedisStore))
	}
	return poolPlace{
		open:  open,
		reset: func() { onClient(func(s *RedisStore) { s.rdb.FlushDB(context.Background()) }) },
		size: func(Store) int64 {
			var used int64
			onClient(func(s *RedisStore) { used = redisUsedMemory(b, s) })
			return used
		},
	}
}

var usedMemory = regexp.MustCompile(`(?m)^used_memory:(\d+)`)

func redisUsedMemory(b *testing.B, s *RedisStore) int64 {
	info, err := s.rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	m := usedMemory.FindStringSubmatch(info)
	if m == nil {
		b.Fatalf("no used_memory in %q", info)
	}
	v, _ := strconv.ParseInt(m[1], 10, 64)
	return v
}

// scatterFreeTimes makes every number of the store look leased once by its
// own transfer and free again since its own past time, in random order, as
// a pool looks after a day of calls. Only the number records change (the
// embedded store rebuilds its free index from them when it opens; Redis
// reads no index while setting a pool up).
func scatterFreeTimes(b *testing.B, st Store) {
	bs, ok := st.(*BoltStore)
	if !ok {
		return
	}
	day := time.Now().Add(-24 * time.Hour)
	err := bs.db.Update(func(tx *bolt.Tx) error {
		pool := tx.Bucket(bucketPools).Bucket([]byte("US"))
		var numbers [][]byte
		if err := pool.ForEach(func(k, _ []byte) error {
			numbers = append(numbers, bytes.Clone(k))
			return nil
		}); err != nil {
			return err
		}
		for i, k := range numbers {
			free := day.Add(time.Duration(rand.Int64N(int64(23 * time.Hour))))
			r := numberRecord{heldUntil: free.Add(-time.Minute), freeAt: free, transferID: fmt.Sprintf("t-%d", i)}
			if err := pool.Put(k, r.marshal()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

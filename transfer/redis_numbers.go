package transfer

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// SetNumbers works in chunks so that a pool of 100 000 numbers never blocks
// Redis (or outlasts a client's read timeout) in one long script. Each
// number changes atomically in a script that checks its state there, so
// nodes reconfiguring at once, or leasing meanwhile, stay consistent; a
// conflict found by the read-only check pass changes nothing.
const setNumbersChunk = 2000

// numbersArgs is what lua/check_numbers.lua, lua/remove_numbers.lua and
// lua/add_numbers.lua read: a chunk of one country's numbers.
type numbersArgs struct {
	Prefix  string   `json:"prefix"`
	Now     string   `json:"now"`
	Country string   `json:"country"`
	Numbers []string `json:"numbers"`
}

// SetNumbers implements Store: the pools become exactly these numbers.
// Numbers that disappear while leased or in quarantine are retired (kept
// until their lease and quarantine end, never leased again); free ones are
// dropped. A number still busy in another country is refused, and then
// nothing changes. Only the numbers whose place changes go through the
// scripts; the indexes tell which (a restart with the same pool runs none).
func (s *RedisStore) SetNumbers(ctx context.Context, pools map[string][]string, now time.Time) error {
	places, err := s.numberPlaces(ctx)
	if err != nil {
		return err
	}
	c := poolChanges(pools, places)
	for _, cc := range slices.Sorted(maps.Keys(c.check)) {
		if err := s.eachChunk(ctx, checkNumbersScript, cc, c.check[cc], now); err != nil {
			return err
		}
	}
	for _, cc := range slices.Sorted(maps.Keys(c.remove)) {
		if err := s.eachChunk(ctx, removeNumbersScript, cc, c.remove[cc], now); err != nil {
			return err
		}
	}
	for _, cc := range slices.Sorted(maps.Keys(c.add)) {
		// A refusal here means a lease or another node raced the check.
		if err := s.eachChunk(ctx, addNumbersScript, cc, c.add[cc], now); err != nil {
			return err
		}
	}
	return nil
}

// numberPlace is where the indexes put a number: its country, and whether
// it is retired there (in freeat but not in avail).
type numberPlace struct {
	country string
	retired bool
}

// numberPlaces reads the place of every known number from the indexes.
func (s *RedisStore) numberPlaces(ctx context.Context) (map[string]numberPlace, error) {
	known, err := s.rdb.SMembers(ctx, s.key("countries")).Result()
	if err != nil {
		return nil, wrap(ctx, err)
	}
	places := map[string]numberPlace{}
	for _, cc := range known {
		all, err := s.rdb.ZRange(ctx, s.key("freeat:", cc), 0, -1).Result()
		if err != nil {
			return nil, wrap(ctx, err)
		}
		avail, err := s.rdb.ZRange(ctx, s.key("avail:", cc), 0, -1).Result()
		if err != nil {
			return nil, wrap(ctx, err)
		}
		for _, n := range all {
			places[n] = numberPlace{country: cc, retired: true}
		}
		for _, n := range avail {
			places[n] = numberPlace{country: cc}
		}
	}
	return places, nil
}

// numberChanges lists, per country, the numbers each script must see.
type numberChanges struct {
	check  map[string][]string // wanted here, held by another country
	remove map[string][]string // held here, no longer wanted here
	add    map[string][]string // wanted here, not here or retired here
}

// poolChanges compares the wanted pools with the numbers' places.
func poolChanges(pools map[string][]string, places map[string]numberPlace) numberChanges {
	c := numberChanges{check: map[string][]string{}, remove: map[string][]string{}, add: map[string][]string{}}
	wanted := map[string]string{}
	for cc, numbers := range pools {
		for _, n := range numbers {
			wanted[n] = cc
			p, known := places[n]
			if known && p.country != cc {
				c.check[cc] = append(c.check[cc], n)
			}
			if !known || p.country != cc || p.retired {
				c.add[cc] = append(c.add[cc], n)
			}
		}
	}
	for n, p := range places {
		if wanted[n] != p.country {
			c.remove[p.country] = append(c.remove[p.country], n)
		}
	}
	for _, numbers := range c.remove {
		slices.Sort(numbers)
	}
	return c
}

// eachChunk runs script on country cc's numbers, setNumbersChunk at a time,
// and stops at the first refusal ("number other": the number is busy in
// the country other).
func (s *RedisStore) eachChunk(ctx context.Context, script *redis.Script, cc string, numbers []string, now time.Time) error {
	for i := 0; i < len(numbers); i += setNumbersChunk {
		args := numbersArgs{Prefix: s.p, Now: micros(now), Country: cc, Numbers: numbers[i:min(i+setNumbersChunk, len(numbers))]}
		res, err := s.run(ctx, script, args).Text()
		if err != nil {
			return wrap(ctx, err)
		}
		if f := strings.Fields(res); len(f) == 2 {
			return fmt.Errorf("number %s is configured for %s and %s", f[0], f[1], cc)
		} else if res != "" {
			return fmt.Errorf("number configured for two countries: %s", res)
		}
	}
	return nil
}

// poolStatsArgs is what lua/pool_stats.lua reads.
type poolStatsArgs struct {
	Prefix string `json:"prefix"`
	Now    string `json:"now"`
}

// PoolStats implements Store.
func (s *RedisStore) PoolStats(ctx context.Context, now time.Time) (map[string]PoolStats, error) {
	res, err := s.run(ctx, poolStatsScript, poolStatsArgs{Prefix: s.p, Now: micros(now)}).Slice()
	if err != nil {
		return nil, wrap(ctx, err)
	}
	out := map[string]PoolStats{}
	for i := 0; i+3 < len(res); i += 4 {
		cc, _ := res[i].(string)
		free, _ := res[i+1].(int64)
		leased, _ := res[i+2].(int64)
		quarantined, _ := res[i+3].(int64)
		out[cc] = PoolStats{Free: int(free), Leased: int(leased), Quarantined: int(quarantined)}
	}
	return out, nil
}

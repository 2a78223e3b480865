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
// nothing changes.
func (s *RedisStore) SetNumbers(ctx context.Context, pools map[string][]string, now time.Time) error {
	known, err := s.rdb.SMembers(ctx, s.key("countries")).Result()
	if err != nil {
		return wrap(ctx, err)
	}
	countries := slices.Sorted(maps.Keys(pools))
	for _, cc := range countries {
		// Only a number of another country can be busy there: with a
		// single country (or on the first start), there is nothing to check.
		if slices.ContainsFunc(known, func(k string) bool { return k != cc }) {
			if err := s.eachChunk(ctx, checkNumbersScript, cc, pools[cc], now); err != nil {
				return err
			}
		}
	}
	if err := s.removeUnwanted(ctx, known, pools, now); err != nil {
		return err
	}
	for _, cc := range countries {
		// A refusal here means a lease or another node raced the check.
		if err := s.eachChunk(ctx, addNumbersScript, cc, pools[cc], now); err != nil {
			return err
		}
	}
	return nil
}

// removeUnwanted runs lua/remove_numbers.lua on every number of the known
// countries that is no longer configured for its country.
func (s *RedisStore) removeUnwanted(ctx context.Context, known []string, pools map[string][]string, now time.Time) error {
	wanted := map[string]string{}
	for cc, numbers := range pools {
		for _, n := range numbers {
			wanted[n] = cc
		}
	}
	for _, cc := range known {
		numbers, err := s.rdb.ZRange(ctx, s.key("freeat:", cc), 0, -1).Result()
		if err != nil {
			return wrap(ctx, err)
		}
		gone := slices.DeleteFunc(numbers, func(n string) bool { return wanted[n] == cc })
		if err := s.eachChunk(ctx, removeNumbersScript, cc, gone, now); err != nil {
			return err
		}
	}
	return nil
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

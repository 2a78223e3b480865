package transfer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// DefaultRedisPrefix starts every key the Redis store writes.
const DefaultRedisPrefix = "handoff:"

// RedisOptions tunes the shared store.
type RedisOptions struct {
	// Prefix starts every key (DefaultRedisPrefix when empty), so several
	// deployments can share one Redis.
	Prefix string
	// Quarantine is how long a number rests after its lease ends (as BoltOptions).
	Quarantine time.Duration
}

// RedisStore is the Store shared by several Handoff nodes. Every change is
// one Lua script, so it is atomic on the Redis server: two nodes never lease
// one number, and Update is compare-and-set on a per-transfer version.
// It needs a single Redis primary (standalone or Sentinel), not Redis
// Cluster: the scripts touch keys they compute. Errors that mean Redis could
// not be reached (or is loading, read-only, ...) wrap ErrUnavailable.
//
// Keys (P is the prefix; times are Unix microseconds):
//
//	P t:<id>          hash  d=JSON record, v=version, n=leased number, w=last write token
//	P counts          hash  status -> stored transfers
//	P expiry          zset  ACTIVE transfer ids by expiresAt
//	P countries       set   countries that have (or had) numbers
//	P n:<number>      hash  c=country, h=heldUntil, f=freeAt, r=retired (0/1), t=transfer id
//	P avail:<cc>      zset  configured (not retired) numbers by freeAt: free ones score <= now
//	P freeat:<cc>     zset  every number of the country by freeAt
//	P held:<cc>       zset  every number of the country by heldUntil
//	P ended           zset  COMPLETED and EXPIRED transfer ids by end time
//	P ongoing:<node>  set   ONGOING transfer ids answered by node
//	P ongoing-nodes   set   nodes that may have ONGOING transfers
//	P hb:<node>       string, expires: the node's live heartbeat
//	P nodes           zset  node -> last heartbeat (Redis clock, ms)
type RedisStore struct {
	rdb        redis.UniversalClient
	owned      bool
	p          string
	quarantine time.Duration
}

// OpenRedis connects to the Redis at url (redis://[user:pass@]host:port/db,
// rediss:// for TLS) and checks that it answers.
func OpenRedis(ctx context.Context, url string, opts RedisOptions) (*RedisStore, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("store.redis_url: %w", err)
	}
	// Fail fast: a call set-up waits on the store, and the API answers 503
	// rather than hanging when Redis is away.
	if o.DialTimeout == 5*time.Second || o.DialTimeout == 0 {
		o.DialTimeout = 2 * time.Second
	}
	if o.ReadTimeout == 0 || o.ReadTimeout == 3*time.Second {
		o.ReadTimeout = 2 * time.Second
	}
	if o.WriteTimeout == 0 || o.WriteTimeout == 3*time.Second {
		o.WriteTimeout = 2 * time.Second
	}
	o.PoolTimeout = 3 * time.Second
	o.MaxRetries = 1
	o.DialerRetries = 1 // the caller retries (503 Retry-After); answer fast
	o.DisableIdentity = true
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	rdb := redis.NewClient(o)
	s := NewRedisStore(rdb, opts)
	s.owned = true
	if err := s.Ping(ctx); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis %s: %w", o.Addr, err)
	}
	return s, nil
}

// NewRedisStore uses an existing client; Close leaves the client open.
func NewRedisStore(rdb redis.UniversalClient, opts RedisOptions) *RedisStore {
	if opts.Prefix == "" {
		opts.Prefix = DefaultRedisPrefix
	}
	return &RedisStore{rdb: rdb, p: opts.Prefix, quarantine: opts.Quarantine}
}

// Client returns the underlying client.
func (s *RedisStore) Client() redis.UniversalClient { return s.rdb }

func (s *RedisStore) key(parts ...string) string { return s.p + strings.Join(parts, "") }

func micros(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.UnixMicro(), 10)
}

// wrap turns transport failures into ErrUnavailable; replies that Redis
// itself gave (other than "try later" ones) pass through.
func wrap(ctx context.Context, err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return err
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "BUSY", "CLUSTERDOWN", "NOREPLICAS", "MISCONF"} {
			if strings.HasPrefix(rerr.Error(), p) {
				return fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
		}
		return err
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return err // the caller gave up; Redis may be fine
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// createScript stores a new transfer and, for a PHONE_NUMBER one, leases the
// free number of its country that has rested longest.
//
// KEYS: t:<id>, counts, expiry, avail:<cc>, freeat:<cc>, held:<cc>
// ARGV: id, JSON, status, expiresAt, country ("" = no lease), now, heldUntil, freeAt, prefix
// Returns {"exists", d, n} | {"unknown"} | {"nonumber"} | {"ok", number}.
var createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  local r = redis.call('HMGET', KEYS[1], 'd', 'n')
  return {'exists', r[1], r[2] or ''}
end
local number = ''
if ARGV[5] ~= '' then
  if redis.call('ZCARD', KEYS[4]) == 0 then return {'unknown'} end
  local pick = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[6], 'LIMIT', 0, 1)
  if #pick == 0 then return {'nonumber'} end
  number = pick[1]
  redis.call('HSET', ARGV[9] .. 'n:' .. number, 'h', ARGV[7], 'f', ARGV[8], 't', ARGV[1])
  redis.call('ZADD', KEYS[4], ARGV[8], number)
  redis.call('ZADD', KEYS[5], ARGV[8], number)
  redis.call('ZADD', KEYS[6], ARGV[7], number)
end
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'v', 1, 'n', number)
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return {'ok', number}
`)

// Create implements Store.
func (s *RedisStore) Create(ctx context.Context, t *Transfer, now time.Time) (*Transfer, error) {
	rec := t.Clone()
	country := ""
	if rec.Type == TypePhoneNumber && rec.PhoneNumber != nil {
		country = rec.PhoneNumber.Country
		rec.PhoneNumber.TransferNumber = ""
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	held := rec.ExpiresAt
	keys := []string{s.key("t:", rec.ID), s.key("counts"), s.key("expiry"),
		s.key("avail:", country), s.key("freeat:", country), s.key("held:", country)}
	res, err := createScript.Run(ctx, s.rdb, keys,
		rec.ID, data, string(rec.Status), micros(rec.ExpiresAt), country, micros(now),
		micros(held), micros(held.Add(s.quarantine)), s.p).StringSlice()
	if err != nil {
		return nil, wrap(ctx, err)
	}
	switch res[0] {
	case "exists":
		existing, err := decodeTransfer(rec.ID, res[1], res[2])
		if err != nil {
			return nil, err
		}
		return existing, ErrExists
	case "unknown":
		return nil, ErrUnknownCountry
	case "nonumber":
		return nil, ErrNoNumber
	}
	if country != "" {
		rec.PhoneNumber.TransferNumber = res[1]
	}
	return rec, nil
}

func decodeTransfer(id, data, number string) (*Transfer, error) {
	var t Transfer
	if err := json.Unmarshal([]byte(data), &t); err != nil {
		return nil, fmt.Errorf("decode transfer %q: %w", id, err)
	}
	if number != "" && t.PhoneNumber != nil {
		t.PhoneNumber.TransferNumber = number
	}
	return &t, nil
}

// Get implements Store.
func (s *RedisStore) Get(ctx context.Context, id string) (*Transfer, error) {
	t, _, _, err := s.read(ctx, id)
	return t, err
}

// read returns the transfer, its version and its last write token.
func (s *RedisStore) read(ctx context.Context, id string) (*Transfer, string, string, error) {
	vals, err := s.rdb.HMGet(ctx, s.key("t:", id), "d", "n", "v", "w").Result()
	if err != nil {
		return nil, "", "", wrap(ctx, err)
	}
	data, _ := vals[0].(string)
	if data == "" {
		return nil, "", "", ErrNotFound
	}
	number, _ := vals[1].(string)
	version, _ := vals[2].(string)
	token, _ := vals[3].(string)
	t, err := decodeTransfer(id, data, number)
	return t, version, token, err
}

// findScript returns the record of the transfer that holds a number now.
// KEYS: n:<number>. ARGV: now, prefix. Returns {id, d, n} or nil.
var findScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'h', 't')
if not r[1] or not r[2] or r[2] == '' then return nil end
if tonumber(ARGV[1]) >= tonumber(r[1]) then return nil end
local t = redis.call('HMGET', ARGV[2] .. 't:' .. r[2], 'd', 'n')
if not t[1] then return nil end
return {r[2], t[1], t[2] or ''}
`)

// FindByNumber implements Store.
func (s *RedisStore) FindByNumber(ctx context.Context, number string, now time.Time) (*Transfer, error) {
	res, err := findScript.Run(ctx, s.rdb, []string{s.key("n:", number)}, micros(now), s.p).StringSlice()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, wrap(ctx, err)
	}
	return decodeTransfer(res[0], res[1], res[2])
}

// updateScript is the compare-and-set write of Update with its side effects.
//
// KEYS: t:<id>, counts, expiry
// ARGV: 1 version, 2 JSON, 3 token, 4 old status, 5 new status, 6 id,
//
//	7 remove from expiry (0/1), 8 new expiry score ("" = leave),
//	9 number to release ("" = none), 10 lease end, 11 freeAt after release,
//	12 old ongoing node ("" = none), 13 new ongoing node, 14 prefix,
//	15 ended score ("" = not newly ended)
//
// Returns 1, or 0 when the version moved (another writer won).
var updateScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'w', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'v', 1)
if ARGV[4] ~= ARGV[5] then
  redis.call('HINCRBY', KEYS[2], ARGV[4], -1)
  redis.call('HINCRBY', KEYS[2], ARGV[5], 1)
end
if ARGV[7] == '1' then redis.call('ZREM', KEYS[3], ARGV[6]) end
if ARGV[8] ~= '' then redis.call('ZADD', KEYS[3], 'XX', ARGV[8], ARGV[6]) end
if ARGV[9] ~= '' then
  local nk = ARGV[14] .. 'n:' .. ARGV[9]
  local r = redis.call('HMGET', nk, 't', 'h', 'c')
  if r[1] == ARGV[6] and r[2] and tonumber(ARGV[10]) < tonumber(r[2]) then
    redis.call('HSET', nk, 'h', ARGV[10], 'f', ARGV[11])
    redis.call('ZADD', ARGV[14] .. 'avail:' .. r[3], 'XX', ARGV[11], ARGV[9])
    redis.call('ZADD', ARGV[14] .. 'freeat:' .. r[3], ARGV[11], ARGV[9])
    redis.call('ZADD', ARGV[14] .. 'held:' .. r[3], ARGV[10], ARGV[9])
  end
end
if ARGV[12] ~= ARGV[13] then
  if ARGV[12] ~= '' then redis.call('SREM', ARGV[14] .. 'ongoing:' .. ARGV[12], ARGV[6]) end
  if ARGV[13] ~= '' then
    redis.call('SADD', ARGV[14] .. 'ongoing:' .. ARGV[13], ARGV[6])
    redis.call('SADD', ARGV[14] .. 'ongoing-nodes', ARGV[13])
  end
end
if ARGV[15] ~= '' then redis.call('ZADD', ARGV[14] .. 'ended', ARGV[15], ARGV[6]) end
return 1
`)

// updateAttempts bounds the compare-and-set retries of one Update.
const updateAttempts = 16

// ErrContention is returned when an Update lost its compare-and-set race
// too many times in a row.
var ErrContention = errors.New("transfer: too many concurrent updates")

// ongoingNode is the node whose ONGOING index holds t, or "".
func ongoingNode(t *Transfer) string {
	if t.Status == StatusOngoing {
		return t.Node
	}
	return ""
}

// Update implements Store: read the record and its version, apply fn in Go,
// and write only if the version is unchanged; on a conflict, start over.
func (s *RedisStore) Update(ctx context.Context, id string, now time.Time, fn func(*Transfer) error) (*Transfer, error) {
	var lastToken string
	for attempt := range updateAttempts {
		old, version, token, err := s.read(ctx, id)
		if err != nil {
			return nil, err
		}
		if lastToken != "" && token == lastToken {
			// Our previous write landed but its reply was lost.
			return old, nil
		}
		t := old.Clone()
		if err := fn(t); err != nil {
			return nil, err
		}
		data, err := json.Marshal(t)
		if err != nil {
			return nil, err
		}
		lastToken = newToken()
		leaving := old.Status == StatusActive && t.Status != StatusActive
		removeExpiry, expiryScore := "0", ""
		release, end, freeAt := "", "", ""
		if leaving {
			removeExpiry = "1"
			if t.PhoneNumber != nil && t.PhoneNumber.TransferNumber != "" {
				e := now
				if t.ExpiresAt.Before(e) {
					e = t.ExpiresAt
				}
				release, end, freeAt = t.PhoneNumber.TransferNumber, micros(e), micros(e.Add(s.quarantine))
			}
		} else if t.Status == StatusActive && !t.ExpiresAt.Equal(old.ExpiresAt) {
			expiryScore = micros(t.ExpiresAt)
		}
		endedScore := ""
		if old.EndedAt().IsZero() && !t.EndedAt().IsZero() {
			endedScore = micros(t.EndedAt())
		}
		ok, err := updateScript.Run(ctx, s.rdb,
			[]string{s.key("t:", id), s.key("counts"), s.key("expiry")},
			version, data, lastToken, string(old.Status), string(t.Status), id,
			removeExpiry, expiryScore, release, end, freeAt,
			ongoingNode(old), ongoingNode(t), s.p, endedScore).Int()
		if err != nil {
			if errors.Is(wrap(ctx, err), ErrUnavailable) && ctx.Err() == nil && attempt < 2 {
				// The outcome is unknown: re-read; the token tells
				// whether this write landed.
				continue
			}
			return nil, wrap(ctx, err)
		}
		if ok == 1 {
			return t, nil
		}
		if attempt > 2 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt) * time.Millisecond):
			}
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrContention, id)
}

// purgeScript deletes one ended transfer, if it still is ended.
// KEYS: t:<id>, counts, ended. ARGV: id.
var purgeScript = redis.NewScript(`
local d = redis.call('HGET', KEYS[1], 'd')
local gone = 0
if d then
  local st = cjson.decode(d)['status']
  if st == 'COMPLETED' or st == 'EXPIRED' then
    redis.call('DEL', KEYS[1])
    redis.call('HINCRBY', KEYS[2], st, -1)
    gone = 1
  end
end
redis.call('ZREM', KEYS[3], ARGV[1])
return gone
`)

// Purge implements Store.
func (s *RedisStore) Purge(ctx context.Context, endedBefore time.Time, limit int) (int, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, s.key("ended"), &redis.ZRangeBy{
		Min: "-inf", Max: "(" + micros(endedBefore), Count: int64(limit),
	}).Result()
	if err != nil {
		return 0, wrap(ctx, err)
	}
	n := 0
	for _, id := range ids {
		gone, err := purgeScript.Run(ctx, s.rdb, []string{s.key("t:", id), s.key("counts"), s.key("ended")}, id).Int()
		if err != nil {
			return n, wrap(ctx, err)
		}
		n += gone
	}
	return n, nil
}

func newToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// SetNumbers works in chunks so that a pool of 100 000 numbers never blocks
// Redis (or outlasts a client's read timeout) in one long script. Each
// number changes atomically in a script that checks its state there, so
// nodes reconfiguring at once, or leasing meanwhile, stay consistent; a
// conflict found by the read-only check pass changes nothing.
const setNumbersChunk = 2000

// checkNumbersScript finds wanted numbers that are busy in another country.
// ARGV: now, prefix, then number, country pairs. Returns "number country other" or "".
var checkNumbersScript = redis.NewScript(`
local now = tonumber(ARGV[1])
for i = 3, #ARGV, 2 do
  local r = redis.call('HMGET', ARGV[2] .. 'n:' .. ARGV[i], 'h', 'f', 'c')
  if r[3] and r[3] ~= ARGV[i+1] and (now < tonumber(r[1] or '0') or now < tonumber(r[2] or '0')) then
    return ARGV[i] .. ' ' .. ARGV[i+1] .. ' ' .. r[3]
  end
end
return ''
`)

// removeNumbersScript retires (while leased or in quarantine) or drops
// (when free) numbers of a country that are no longer configured.
// ARGV: now, prefix, country, then numbers.
var removeNumbersScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local P, cc = ARGV[2], ARGV[3]
for i = 4, #ARGV do
  local n = ARGV[i]
  local nk = P .. 'n:' .. n
  local r = redis.call('HMGET', nk, 'h', 'f', 'c')
  if r[3] == cc then
    if now < tonumber(r[1] or '0') or now < tonumber(r[2] or '0') then
      redis.call('HSET', nk, 'r', '1')
      redis.call('ZREM', P .. 'avail:' .. cc, n)
    else
      redis.call('DEL', nk)
      redis.call('ZREM', P .. 'avail:' .. cc, n)
      redis.call('ZREM', P .. 'freeat:' .. cc, n)
      redis.call('ZREM', P .. 'held:' .. cc, n)
    end
  end
end
return 1
`)

// addNumbersScript adds numbers to a country, or un-retires them.
// KEYS: countries. ARGV: now, prefix, country, then numbers.
// Returns "number other" for a number busy in another country, else "".
var addNumbersScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local P, cc = ARGV[2], ARGV[3]
redis.call('SADD', KEYS[1], cc)
for i = 4, #ARGV do
  local n = ARGV[i]
  local nk = P .. 'n:' .. n
  local r = redis.call('HMGET', nk, 'c', 'r', 'f', 'h')
  if r[1] and r[1] ~= cc then
    if now < tonumber(r[4] or '0') or now < tonumber(r[3] or '0') then
      return n .. ' ' .. r[1]
    end
    redis.call('DEL', nk)
    redis.call('ZREM', P .. 'avail:' .. r[1], n)
    redis.call('ZREM', P .. 'freeat:' .. r[1], n)
    redis.call('ZREM', P .. 'held:' .. r[1], n)
    r = {false}
  end
  if r[1] then
    if r[2] == '1' then
      redis.call('HSET', nk, 'r', '0')
      redis.call('ZADD', P .. 'avail:' .. cc, r[3], n)
    end
  else
    redis.call('HSET', nk, 'c', cc, 'h', '0', 'f', '0', 'r', '0', 't', '')
    redis.call('ZADD', P .. 'avail:' .. cc, 0, n)
    redis.call('ZADD', P .. 'freeat:' .. cc, 0, n)
    redis.call('ZADD', P .. 'held:' .. cc, 0, n)
  end
end
return ''
`)

// SetNumbers implements Store: the pools become exactly these numbers.
// Numbers that disappear while leased or in quarantine are retired (kept
// until their lease and quarantine end, never leased again); free ones are
// dropped. A number still busy in another country is refused, and then
// nothing changes.
func (s *RedisStore) SetNumbers(ctx context.Context, pools map[string][]string, now time.Time) error {
	wanted := map[string]string{}
	var pairs []any
	for cc, numbers := range pools {
		for _, n := range numbers {
			wanted[n] = cc
			pairs = append(pairs, n, cc)
		}
	}
	refused := func(res string) error {
		if f := strings.Fields(res); len(f) == 3 {
			return fmt.Errorf("number %s is configured for %s and %s", f[0], f[2], f[1])
		}
		return fmt.Errorf("number configured for two countries: %s", res)
	}
	for i := 0; i < len(pairs); i += 2 * setNumbersChunk {
		args := append([]any{micros(now), s.p}, pairs[i:min(i+2*setNumbersChunk, len(pairs))]...)
		res, err := checkNumbersScript.Run(ctx, s.rdb, nil, args...).Text()
		if err != nil {
			return wrap(ctx, err)
		}
		if res != "" {
			return refused(res)
		}
	}
	countries, err := s.rdb.SMembers(ctx, s.key("countries")).Result()
	if err != nil {
		return wrap(ctx, err)
	}
	for _, cc := range countries {
		numbers, err := s.rdb.ZRange(ctx, s.key("freeat:", cc), 0, -1).Result()
		if err != nil {
			return wrap(ctx, err)
		}
		var gone []any
		for _, n := range numbers {
			if wanted[n] != cc {
				gone = append(gone, n)
			}
		}
		for i := 0; i < len(gone); i += setNumbersChunk {
			args := append([]any{micros(now), s.p, cc}, gone[i:min(i+setNumbersChunk, len(gone))]...)
			if err := removeNumbersScript.Run(ctx, s.rdb, nil, args...).Err(); err != nil {
				return wrap(ctx, err)
			}
		}
	}
	for cc, numbers := range pools {
		if len(numbers) == 0 {
			continue
		}
		for i := 0; i < len(numbers); i += setNumbersChunk {
			args := []any{micros(now), s.p, cc}
			for _, n := range numbers[i:min(i+setNumbersChunk, len(numbers))] {
				args = append(args, n)
			}
			res, err := addNumbersScript.Run(ctx, s.rdb, []string{s.key("countries")}, args...).Text()
			if err != nil {
				return wrap(ctx, err)
			}
			if res != "" {
				// Became busy elsewhere since the check: a lease raced us.
				f := strings.Fields(res)
				return fmt.Errorf("number %s is configured for %s and %s", f[0], f[len(f)-1], cc)
			}
		}
	}
	return nil
}

// poolStatsScript counts each country's numbers at now.
// KEYS: countries. ARGV: now, prefix. Returns {cc, free, leased, quarantined, ...}.
var poolStatsScript = redis.NewScript(`
local out = {}
local after = '(' .. ARGV[1]
for _, cc in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local P = ARGV[2]
  local leased = redis.call('ZCOUNT', P .. 'held:' .. cc, after, '+inf')
  local busy = redis.call('ZCOUNT', P .. 'freeat:' .. cc, after, '+inf')
  local free = redis.call('ZCOUNT', P .. 'avail:' .. cc, '-inf', ARGV[1])
  table.insert(out, cc)
  table.insert(out, free)
  table.insert(out, leased)
  table.insert(out, busy - leased)
end
return out
`)

// PoolStats implements Store.
func (s *RedisStore) PoolStats(ctx context.Context, now time.Time) (map[string]PoolStats, error) {
	res, err := poolStatsScript.Run(ctx, s.rdb, []string{s.key("countries")}, micros(now), s.p).Slice()
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

// Expired implements Store.
func (s *RedisStore) Expired(ctx context.Context, now time.Time, limit int) ([]string, error) {
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: s.key("expiry"), Start: "-inf", Stop: micros(now), ByScore: true, Count: int64(limit),
	}).Result()
	return ids, wrap(ctx, err)
}

// Counts implements Store.
func (s *RedisStore) Counts(ctx context.Context) (map[Status]int, error) {
	m, err := s.rdb.HGetAll(ctx, s.key("counts")).Result()
	if err != nil {
		return nil, wrap(ctx, err)
	}
	out := map[Status]int{}
	for k, v := range m {
		n, _ := strconv.Atoi(v)
		out[Status(k)] = max(n, 0)
	}
	return out, nil
}

// Ping implements Store.
func (s *RedisStore) Ping(ctx context.Context) error {
	return wrap(ctx, s.rdb.Ping(ctx).Err())
}

// Close implements Store; it closes the client only if OpenRedis made it.
func (s *RedisStore) Close() error {
	if s.owned {
		return s.rdb.Close()
	}
	return nil
}

// heartbeatScript marks a node alive for ttl and records when (Redis clock,
// so nodes' clocks do not matter).
// KEYS: hb:<node>, nodes. ARGV: node, ttl (ms).
var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local ms = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
redis.call('SET', KEYS[1], ms, 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ms, ARGV[1])
return 1
`)

// Heartbeat implements NodeStore.
func (s *RedisStore) Heartbeat(ctx context.Context, node string, ttl time.Duration) error {
	err := heartbeatScript.Run(ctx, s.rdb, []string{s.key("hb:", node), s.key("nodes")},
		node, strconv.FormatInt(max(ttl.Milliseconds(), 1), 10)).Err()
	return wrap(ctx, err)
}

// lostNodesScript lists nodes with ONGOING transfers that have no live
// heartbeat and whose last one is older than ARGV[2] ms; it forgets nodes
// whose ONGOING index is empty.
// KEYS: ongoing-nodes, nodes. ARGV: prefix, after (ms).
var lostNodesScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('SCARD', ARGV[1] .. 'ongoing:' .. node) == 0 then
    redis.call('SREM', KEYS[1], node)
  elseif redis.call('EXISTS', ARGV[1] .. 'hb:' .. node) == 0 then
    local last = redis.call('ZSCORE', KEYS[2], node)
    if not last or now - tonumber(last) > tonumber(ARGV[2]) then
      table.insert(out, node)
    end
  end
end
return out
`)

// LostNodes implements NodeStore.
func (s *RedisStore) LostNodes(ctx context.Context, after time.Duration) ([]string, error) {
	nodes, err := lostNodesScript.Run(ctx, s.rdb, []string{s.key("ongoing-nodes"), s.key("nodes")},
		s.p, strconv.FormatInt(after.Milliseconds(), 10)).StringSlice()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return nodes, wrap(ctx, err)
}

// OngoingOn implements NodeStore.
func (s *RedisStore) OngoingOn(ctx context.Context, node string, limit int) ([]string, error) {
	ids, err := s.rdb.SRandMemberN(ctx, s.key("ongoing:", node), int64(limit)).Result()
	return ids, wrap(ctx, err)
}

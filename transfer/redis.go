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
	// Webhooks, when set, has every change write its webhook events to the
	// store's outbox in its script (the store is a webhook.Outbox).
	Webhooks *Webhooks
}

// RedisStore is the Store shared by several Handoff nodes. Every change is
// one Lua script (lua/*.lua, each taking one JSON argument), so it is atomic
// on the Redis server: two nodes never lease one number, and Update is
// compare-and-set on a per-transfer version. A create or an update writes
// the plan that planCreate or planUpdate made, in lua/write.lua.
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
//	                        (a number never leased has only c: the others read as 0 and "")
//	P avail:<cc>      zset  configured (not retired) numbers by freeAt: free ones score <= now
//	P freeat:<cc>     zset  every number of the country by freeAt
//	P held:<cc>       zset  the country's numbers leased at least once, by heldUntil
//	P ended           zset  COMPLETED and EXPIRED transfer ids by end time
//	P ongoing:<node>  set   ONGOING transfer ids answered by node
//	P ongoing-nodes   set   nodes that may have ONGOING transfers
//	P hb:<node>       string, expires: the node's live heartbeat
//	P nodes           zset  node -> last heartbeat (Redis clock, ms)
//	P ob:...          the outbox of webhook events (lua/outbox_lib.lua)
type RedisStore struct {
	rdb        redis.UniversalClient
	owned      bool
	p          string
	quarantine time.Duration
	webhooks   *Webhooks
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
	return &RedisStore{rdb: rdb, p: opts.Prefix, quarantine: opts.Quarantine, webhooks: opts.Webhooks}
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

// run runs script with args, JSON-encoded, as its one argument; the
// scripts compute their keys from the prefix in it.
func (s *RedisStore) run(ctx context.Context, script *redis.Script, args any) *redis.Cmd {
	b, _ := json.Marshal(args) // structs of strings and numbers: cannot fail
	return script.Run(ctx, s.rdb, nil, b)
}

// writeArgs is a plan as lua/write.lua reads it (times as micros).
type writeArgs struct {
	Prefix      string      `json:"prefix"`
	ID          string      `json:"id"`
	Record      string      `json:"record"`
	Version     string      `json:"version,omitempty"`
	Token       string      `json:"token,omitempty"`
	CountFrom   Status      `json:"countFrom,omitempty"`
	CountTo     Status      `json:"countTo,omitempty"`
	ExpiryDel   bool        `json:"expiryDel,omitempty"`
	ExpiryAdd   string      `json:"expiryAdd,omitempty"`
	Ended       string      `json:"ended,omitempty"`
	Lease       *leaseArgs  `json:"lease,omitempty"`
	Release     *leaseArgs  `json:"release,omitempty"`
	OngoingFrom string      `json:"ongoingFrom,omitempty"`
	OngoingTo   string      `json:"ongoingTo,omitempty"`
	Events      []eventArgs `json:"events,omitempty"`
}

// leaseArgs is a numberLease as lua/write.lua reads it.
type leaseArgs struct {
	Country   string `json:"country"`
	Holder    string `json:"holder"`
	Number    string `json:"number,omitempty"`
	Now       string `json:"now,omitempty"`
	HeldUntil string `json:"heldUntil"`
	FreeAt    string `json:"freeAt"`
}

func newLeaseArgs(l *numberLease) *leaseArgs {
	if l == nil {
		return nil
	}
	return &leaseArgs{Country: l.Country, Holder: l.Holder, Number: l.Number,
		Now: optMicros(l.Now), HeldUntil: micros(l.HeldUntil), FreeAt: micros(l.FreeAt)}
}

// optMicros is micros, or "" (absent) for the zero time.
func optMicros(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return micros(t)
}

// write applies p in one run of lua/write.lua and returns its reply. An
// update passes the version it read and its write token; a create passes
// neither.
func (s *RedisStore) write(ctx context.Context, p plan, version, token string) ([]string, error) {
	record, err := json.Marshal(p.Record)
	if err != nil {
		return nil, err
	}
	res, err := s.run(ctx, writeScript, writeArgs{
		Prefix: s.p, ID: p.Record.ID, Record: string(record), Version: version, Token: token,
		CountFrom: p.CountFrom, CountTo: p.CountTo,
		ExpiryDel: !p.ExpiryFrom.IsZero(), ExpiryAdd: optMicros(p.ExpiryTo), Ended: optMicros(p.Ended),
		Lease: newLeaseArgs(p.Lease), Release: newLeaseArgs(p.Release),
		OngoingFrom: p.OngoingFrom, OngoingTo: p.OngoingTo, Events: eventsArgs(p.Events),
	}).StringSlice()
	if err != nil {
		return nil, wrap(ctx, err)
	}
	return res, nil
}

// Create implements Store. The number a create leases is kept beside the
// record (field n), not in its JSON.
func (s *RedisStore) Create(ctx context.Context, t *Transfer, now time.Time) (_ *Transfer, err error) {
	rec := t.Clone()
	p := planCreate(rec, now, s.quarantine)
	if p.Lease != nil {
		rec.PhoneNumber.TransferNumber = ""
	}
	if p.Events, err = s.webhooks.events(nil, rec, now); err != nil {
		return nil, err
	}
	res, err := s.write(ctx, p, "", "")
	if err != nil {
		return nil, err
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
	if p.Lease != nil {
		rec.PhoneNumber.TransferNumber = res[1]
	}
	s.webhooks.notify(len(p.Events))
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

// findArgs is what lua/find.lua reads.
type findArgs struct {
	Prefix string `json:"prefix"`
	Number string `json:"number"`
	Now    string `json:"now"`
}

// FindByNumber implements Store.
func (s *RedisStore) FindByNumber(ctx context.Context, number string, now time.Time) (*Transfer, error) {
	res, err := s.run(ctx, findScript, findArgs{Prefix: s.p, Number: number, Now: micros(now)}).StringSlice()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, wrap(ctx, err)
	}
	return decodeTransfer(res[0], res[1], res[2])
}

// updateAttempts bounds the compare-and-set retries of one Update.
const updateAttempts = 16

// ErrContention is returned when an Update lost its compare-and-set race
// too many times in a row.
var ErrContention = errors.New("transfer: too many concurrent updates")

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
		lastToken = newToken()
		p := planUpdate(old, t, now, s.quarantine)
		if p.Events, err = s.webhooks.events(old, t, now); err != nil {
			return nil, err
		}
		res, err := s.write(ctx, p, version, lastToken)
		if err != nil {
			if errors.Is(err, ErrUnavailable) && ctx.Err() == nil && attempt < 2 {
				// The outcome is unknown: re-read; the token tells
				// whether this write landed.
				continue
			}
			return nil, err
		}
		if res[0] == "ok" {
			s.webhooks.notify(len(p.Events))
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

// purgeArgs is what lua/purge.lua reads.
type purgeArgs struct {
	Prefix string `json:"prefix"`
	ID     string `json:"id"`
}

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
		gone, err := s.run(ctx, purgeScript, purgeArgs{Prefix: s.p, ID: id}).Int()
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

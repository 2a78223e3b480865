package transfer

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// heartbeatArgs is what lua/heartbeat.lua reads.
type heartbeatArgs struct {
	Prefix string `json:"prefix"`
	Node   string `json:"node"`
	TTLMs  string `json:"ttlMs"`
}

// Heartbeat implements NodeStore.
func (s *RedisStore) Heartbeat(ctx context.Context, node string, ttl time.Duration) error {
	ttlMs := strconv.FormatInt(max(ttl.Milliseconds(), 1), 10)
	return wrap(ctx, s.run(ctx, heartbeatScript, heartbeatArgs{Prefix: s.p, Node: node, TTLMs: ttlMs}).Err())
}

// lostNodesArgs is what lua/lost_nodes.lua reads.
type lostNodesArgs struct {
	Prefix  string `json:"prefix"`
	AfterMs int64  `json:"afterMs"`
}

// LostNodes implements NodeStore.
func (s *RedisStore) LostNodes(ctx context.Context, after time.Duration) ([]string, error) {
	nodes, err := s.run(ctx, lostNodesScript, lostNodesArgs{Prefix: s.p, AfterMs: after.Milliseconds()}).StringSlice()
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

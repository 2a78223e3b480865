package transfer

import (
	"context"
	"time"
)

// NodeStore is implemented by stores that several Handoff nodes share
// (RedisStore). With a store that does not implement it (the embedded one,
// which serves a single node) the node functions below do nothing.
type NodeStore interface {
	// Heartbeat marks node alive for ttl.
	Heartbeat(ctx context.Context, node string, ttl time.Duration) error
	// LostNodes lists the nodes that have ONGOING transfers, no live
	// heartbeat, and no heartbeat at all for longer than after (measured
	// by the store's clock, so the nodes' clocks do not matter).
	LostNodes(ctx context.Context, after time.Duration) ([]string, error)
	// OngoingOn lists up to limit transfers answered by node that it still
	// owes an outcome: ONGOING, or returning (Transfer.Returning).
	OngoingOn(ctx context.Context, node string, limit int) ([]string, error)
}

// Defaults for NodeConfig fields left zero.
const (
	DefaultHeartbeatInterval = 2 * time.Second
	DefaultNodeGrace         = 10 * time.Second
)

// NodeConfig is one node's membership in a cluster of nodes.
type NodeConfig struct {
	// ID names the node; Transfer.Node records it for the calls it answers.
	ID string
	// Interval is how often the node sends its heartbeat.
	Interval time.Duration
	// TTL is how long one heartbeat keeps the node alive (5 × Interval
	// when zero).
	TTL time.Duration
	// Grace is how much longer a node may be silent after its last
	// heartbeat expired before its ONGOING transfers are ended as node_lost.
	Grace time.Duration
}

func (c *NodeConfig) defaults() {
	if c.Interval <= 0 {
		c.Interval = DefaultHeartbeatInterval
	}
	if c.TTL <= 0 {
		c.TTL = 5 * c.Interval
	}
	if c.Grace <= 0 {
		c.Grace = DefaultNodeGrace
	}
}

// LostAfter is how long after its last heartbeat a node counts as lost.
func (c NodeConfig) LostAfter() time.Duration {
	c.defaults()
	return c.TTL + c.Grace
}

// Heartbeat marks node alive for ttl (no-op on a single-node store).
func (s *Service) Heartbeat(ctx context.Context, node string, ttl time.Duration) error {
	ns, ok := s.store.(NodeStore)
	if !ok {
		return nil
	}
	return ns.Heartbeat(ctx, node, ttl)
}

// lostBatch bounds the transfers one EndLostNodes pass ends per node.
const lostBatch = 200

// EndLostNodes completes, with end reason node_lost, the ONGOING transfers
// of every node other than self whose last heartbeat is older than
// lostAfter (and records the returns they were running as failed), so IVRs
// polling them are not left waiting forever. Every node
// may run it at once: each transfer is ended by one compare-and-set, and a
// transfer that has moved on meanwhile is left alone. It ends at most a
// batch per lost node and returns how many it ended (no-op on a single-node
// store).
func (s *Service) EndLostNodes(ctx context.Context, self string, lostAfter time.Duration) (int, error) {
	ns, ok := s.store.(NodeStore)
	if !ok {
		return 0, nil
	}
	nodes, err := ns.LostNodes(ctx, lostAfter)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, node := range nodes {
		if node == self {
			continue // we are alive, whatever Redis last heard
		}
		ids, err := ns.OngoingOn(ctx, node, lostBatch)
		if err != nil {
			return n, err
		}
		ended, err := s.endOngoing(ctx, ids, node, EndNodeLost, "transfer completed: its node is lost")
		n += ended
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// RunNode sends cfg.ID's heartbeat every cfg.Interval and ends the
// transfers of lost nodes, until ctx ends. It declares other nodes lost only
// once its own heartbeats have been going through for LostAfter, so after a
// store outage (when every node's heartbeat is stale) live nodes get the
// time to beat again before anyone judges them. No-op on a single-node store.
func (s *Service) RunNode(ctx context.Context, cfg NodeConfig) {
	if _, ok := s.store.(NodeStore); !ok {
		return
	}
	cfg.defaults()
	lostAfter := cfg.LostAfter()
	var healthySince time.Time
	beat := func() {
		bctx, cancel := context.WithTimeout(ctx, cfg.Interval)
		defer cancel()
		if err := s.Heartbeat(bctx, cfg.ID, cfg.TTL); err != nil {
			if ctx.Err() == nil && !healthySince.IsZero() {
				s.log.Warn("heartbeat failed", "node", cfg.ID, "err", err)
			}
			healthySince = time.Time{}
			return
		}
		if healthySince.IsZero() {
			healthySince = time.Now()
			s.log.Info("heartbeat going", "node", cfg.ID, "interval", cfg.Interval.String(), "lost_after", lostAfter.String())
		}
		if time.Since(healthySince) < lostAfter {
			return
		}
		if _, err := s.EndLostNodes(bctx, cfg.ID, lostAfter); err != nil && ctx.Err() == nil {
			s.log.Warn("ending lost nodes' transfers failed", "err", err)
		}
	}
	beat()
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			beat()
		}
	}
}

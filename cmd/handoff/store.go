package main

import (
	"context"
	"time"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/transfer"
)

// storeOpenTimeout bounds connecting to Redis at start-up.
const storeOpenTimeout = 10 * time.Second

// openStore opens Redis when store.redis_url is set (several nodes share
// it), else the embedded store at store.path; either writes the webhook
// events w renders. where describes it for logs (never with the Redis
// password).
func openStore(cfg Config, w *transfer.Webhooks) (store transfer.Store, where []any, err error) {
	if cfg.Store.RedisURL == "" {
		st, err := transfer.OpenBolt(cfg.Store.Path, transfer.BoltOptions{Quarantine: cfg.Numbers.Quarantine, Webhooks: w})
		if err != nil {
			return nil, nil, err
		}
		return st, []any{"kind", "embedded", "path", cfg.Store.Path}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeOpenTimeout)
	defer cancel()
	st, err := transfer.OpenRedis(ctx, cfg.Store.RedisURL, transfer.RedisOptions{
		Prefix:     cfg.Store.RedisPrefix,
		Quarantine: cfg.Numbers.Quarantine,
		Webhooks:   w,
	})
	if err != nil {
		return nil, nil, err
	}
	return st, []any{"kind", "redis", "url", redactedURL(cfg.Store.RedisURL), "prefix", cfg.Store.RedisPrefix, "node", cfg.Node.ID}, nil
}

// nodeConfig is this node's membership (used with a shared store only).
func nodeConfig(cfg Config) transfer.NodeConfig {
	return transfer.NodeConfig{ID: cfg.Node.ID, Interval: cfg.Node.Heartbeat, Grace: cfg.Node.Grace}
}

// redactedURL is agent.RedactURL, the one redactor of the URLs logs and
// errors show (agent.url, store.redis_url): no user info, no query values.
func redactedURL(s string) string { return agent.RedactURL(s) }

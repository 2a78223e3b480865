package main

import (
	"os"
	"strings"
	"testing"
)

// The several-nodes keys: store.redis_url, store.redis_prefix, node.*,
// sip.transfer_host.
func TestSeveralNodesKeys(t *testing.T) {
	env := func(kv map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
	}
	cfg, err := Load("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if cfg.Node.ID != host || cfg.Store.RedisURL != "" || cfg.Store.RedisPrefix != "handoff:" {
		t.Fatalf("defaults: node.id %q (want %q), redis_url %q, redis_prefix %q", cfg.Node.ID, host, cfg.Store.RedisURL, cfg.Store.RedisPrefix)
	}
	cfg, err = Load("", env(map[string]string{
		"HANDOFF_STORE_REDIS_URL":   "redis://:s3cret@10.0.0.5:6379/2",
		"HANDOFF_NODE_ID":           "node-7",
		"HANDOFF_SIP_TRANSFER_HOST": "sip-proxy.example.com:5060",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.TransferURI("abc"); got != "sip:abc@sip-proxy.example.com:5060" {
		t.Errorf("TransferURI = %q", got)
	}
	if nc := nodeConfig(cfg); nc.ID != "node-7" || nc.LostAfter() <= 0 {
		t.Errorf("nodeConfig = %+v", nc)
	}
	if r := redactedURL(cfg.Store.RedisURL); strings.Contains(r, "s3cret") {
		t.Errorf("redacted URL %q shows the password", r)
	}
	for key, bad := range map[string]string{
		"HANDOFF_STORE_REDIS_URL":   "http://10.0.0.5:6379",
		"HANDOFF_NODE_ID":           "node 7",
		"HANDOFF_SIP_TRANSFER_HOST": "sip:proxy@example.com",
		"HANDOFF_NODE_HEARTBEAT":    "-1s",
	} {
		if _, err := Load("", env(map[string]string{key: bad})); err == nil {
			t.Errorf("%s=%q accepted", key, bad)
		}
	}
}

package transfer

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/handoff/handoff/webhook"
	"github.com/handoff/handoff/webhook/webhooktest"
)

func TestBoltOutboxContract(t *testing.T) {
	webhooktest.OutboxContract(t, func(t *testing.T) webhook.Outbox {
		st, err := OpenBolt(filepath.Join(t.TempDir(), "handoff.db"), BoltOptions{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	})
}

func TestRedisOutboxContract(t *testing.T) {
	url := testRedis(t).URL()
	webhooktest.OutboxContract(t, func(t *testing.T) webhook.Outbox {
		st, err := OpenRedis(context.Background(), url, RedisOptions{Prefix: "outbox:" + t.Name() + ":"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	})
}

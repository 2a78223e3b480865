package webhook_test

import (
	"testing"

	"github.com/handoff/handoff/webhook"
	"github.com/handoff/handoff/webhook/webhooktest"
)

func TestMemoryOutboxContract(t *testing.T) {
	webhooktest.OutboxContract(t, func(*testing.T) webhook.Outbox { return webhook.NewMemoryOutbox() })
}

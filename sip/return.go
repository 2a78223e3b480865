package sip

import (
	"context"

	"github.com/handoff/handoff/transfer"
)

// Returner hands a call back once its agent has finished. It must leave the
// inbound leg ended (or ending). The function it returns, if not nil,
// records the return's result on the transfer in the same store step that
// completes it.
type Returner interface {
	Return(ctx context.Context, c *Call, out transfer.OutputContext) func(*transfer.Transfer)
}

// byeReturner is the supervised return: the IVR still holds the call, so
// hanging up the leg hands it back.
type byeReturner struct{}

func (byeReturner) Return(ctx context.Context, c *Call, out transfer.OutputContext) func(*transfer.Transfer) {
	c.Hangup(transfer.EndAgentFinished)
	return nil
}

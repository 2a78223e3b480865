package control

import (
	"encoding/json"
	"time"

	"github.com/handoff/handoff/transfer"
)

// EventPayload returns the renderer of webhook event data
// (transfer.Webhooks.Payload): the transfer exactly as GET shows it at the
// moment of the change, byte for byte the body GET would send then (less
// its final newline). sipTransferURI is Config.SIPTransferURI.
//
// The stores call it inside the transaction of the change, so the view is
// rendered here, where the API's shapes live, and handed to the transfer
// package as a function: transfer never imports control.
func EventPayload(sipTransferURI func(id string) string) func(*transfer.Transfer, time.Time) ([]byte, error) {
	return func(t *transfer.Transfer, now time.Time) ([]byte, error) {
		// view reads only cfg.SIPTransferURI and clock.
		a := &API{cfg: Config{SIPTransferURI: sipTransferURI}, clock: func() time.Time { return now }}
		return json.Marshal(a.view(t, true))
	}
}

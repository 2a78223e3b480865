package webhooktest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Received is one webhook request as a test's receiver reads it.
type Received struct {
	ID       string          // webhook-id
	Type     string          // the envelope's type
	Transfer string          // the envelope's data.id
	Data     json.RawMessage // the envelope's data, as sent
	Body     []byte
	Header   http.Header
	// Err says the signature or the body did not verify.
	Err error
}

// Read reads req's body and verifies it with wh, the Standard Webhooks
// reference library (not Handoff's signer): with strictTime the
// webhook-timestamp must also be recent by the real clock.
func Read(req *http.Request, wh *standardwebhooks.Webhook, strictTime bool) Received {
	body, _ := io.ReadAll(req.Body)
	r := Received{ID: req.Header.Get("webhook-id"), Body: body, Header: req.Header.Clone()}
	if strictTime {
		r.Err = wh.Verify(body, req.Header)
	} else {
		r.Err = wh.VerifyIgnoringTimestamp(body, req.Header)
	}
	var env struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		r.Err = fmt.Errorf("body: %w", err)
	}
	var data struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(env.Data, &data)
	r.Type, r.Data, r.Transfer = env.Type, env.Data, data.ID
	return r
}

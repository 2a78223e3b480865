package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/handoff/handoff/transfer"
	"github.com/handoff/handoff/webhook"
)

// eventData delivers the outbox's events and returns each one's data by
// transfer and type.
func (e *env) eventData() map[string]map[webhook.EventType][]byte {
	e.t.Helper()
	ctx := context.Background()
	out := map[string]map[webhook.EventType][]byte{}
	for {
		ds, err := e.outbox.Claim(ctx, "test", time.Now().Add(time.Hour), time.Minute, 100)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(ds) == 0 {
			return out
		}
		for _, d := range ds {
			var env struct {
				Data json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(d.Body, &env); err != nil {
				e.t.Fatal(err)
			}
			if out[d.TransferID] == nil {
				out[d.TransferID] = map[webhook.EventType][]byte{}
			}
			out[d.TransferID][d.Type] = env.Data
			if err := e.outbox.Done(ctx, d.Lease, webhook.ResultDelivered); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

// sameAsGET checks that data is, byte for byte, what GET answers now.
func (e *env) sameAsGET(id string, typ webhook.EventType, data []byte) {
	e.t.Helper()
	r := e.do(http.MethodGet, pathCreate+"/"+id, nil, auth(credA))
	if r.status != http.StatusOK {
		e.t.Fatalf("GET %s: %d", id, r.status)
	}
	if want := bytes.TrimSuffix(r.raw, []byte("\n")); !bytes.Equal(data, want) {
		e.t.Errorf("%s %s data:\n%s\nGET:\n%s", id, typ, data, want)
	}
}

// Each event carries the transfer exactly as GET shows it at that moment:
// the same bytes, the leased number included, the digest password not.
func TestEventPayloadIsWhatGETShows(t *testing.T) {
	e := newEnv(t, func(c *envConfig) { c.webhooks = &transfer.Webhooks{} })
	expect(t, e.create(credA, phoneBody("pay-pn", "US")), http.StatusOK, "")
	expect(t, e.create(credA, sipBody("pay-sip", map[string]any{"returnTransferType": "INVITE", "returnUri": "sip:back@ivr.example.com",
		"returnInviteAuthentication": map[string]any{"username": "u", "password": "pay-secret-pw"}})), http.StatusOK, "")
	got := e.eventData()
	for _, id := range []string{"pay-pn", "pay-sip"} {
		e.sameAsGET(id, webhook.TransferCreated, got[id][webhook.TransferCreated])
	}
	if bytes.Contains(got["pay-sip"][webhook.TransferCreated], []byte("pay-secret-pw")) {
		t.Error("the return INVITE password is in an event")
	}

	ctx := context.Background()
	if _, err := e.svc.Claim(ctx, "pay-sip", "call-1", "node"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Answer(ctx, "pay-sip", "call-1"); err != nil {
		t.Fatal(err)
	}
	e.sameAsGET("pay-sip", webhook.TransferOngoing, e.eventData()["pay-sip"][webhook.TransferOngoing])

	out := &transfer.OutputContext{TransferType: "SYSTEM", CurrentTaskName: "Billing", TransferVariables: map[string]string{"x": "<1>"}}
	if _, err := e.svc.Complete(ctx, "pay-sip", transfer.EndAgentFinished, out, nil); err != nil {
		t.Fatal(err)
	}
	now := e.svc.Now()
	if _, err := e.svc.Amend(ctx, "pay-sip", func(t *transfer.Transfer) {
		t.Return = &transfer.ReturnResult{Method: transfer.ReturnInvite, Result: transfer.ReturnSucceeded, SIPCode: 200, StartedAt: now, EndedAt: now}
	}); err != nil {
		t.Fatal(err)
	}
	e.sameAsGET("pay-sip", webhook.TransferCompleted, e.eventData()["pay-sip"][webhook.TransferCompleted])
}

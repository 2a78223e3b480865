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
	out := map[string]map[webhook.EventType][]byte{}
	for _, ev := range e.events() {
		var env struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(ev.Body, &env); err != nil {
			e.t.Fatal(err)
		}
		if out[ev.TransferID] == nil {
			out[ev.TransferID] = map[webhook.EventType][]byte{}
		}
		out[ev.TransferID][ev.Type] = env.Data
	}
	return out
}

// events delivers the outbox's events and returns them in order.
func (e *env) events() []webhook.Event {
	e.t.Helper()
	ctx := context.Background()
	var out []webhook.Event
	for {
		ds, err := e.outbox.Claim(ctx, "test", time.Now().Add(time.Hour), time.Minute, 100)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(ds) == 0 {
			return out
		}
		for _, d := range ds {
			out = append(out, d.Event)
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

// The OpenAPI document describes every event type under webhooks, and the
// bodies Handoff writes validate against it (and not against another
// type's).
func TestEventsMatchTheOpenAPIWebhooks(t *testing.T) {
	doc := loadDoc(t, "")
	for _, typ := range webhook.EventTypes {
		if op := doc.Webhooks[string(typ)]; op == nil || op.Post == nil {
			t.Fatalf("openapi.yaml has no webhook %s", typ)
		}
	}
	if len(doc.Webhooks) != len(webhook.EventTypes) {
		t.Errorf("openapi.yaml has %d webhooks, want %d", len(doc.Webhooks), len(webhook.EventTypes))
	}
	e := newEnv(t, func(c *envConfig) { c.webhooks = &transfer.Webhooks{} })
	expect(t, e.create(credA, phoneBody("oa-pn", "US")), http.StatusOK, "")
	expect(t, e.create(credA, sipBody("oa-sip", nil)), http.StatusOK, "")
	ctx := context.Background()
	if _, err := e.svc.Claim(ctx, "oa-sip", "call", "node"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Answer(ctx, "oa-sip", "call"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Complete(ctx, "oa-sip", transfer.EndAgentFinished, &transfer.OutputContext{TransferType: "SYSTEM"}, nil); err != nil {
		t.Fatal(err)
	}
	now := e.svc.Now()
	if _, err := e.svc.Amend(ctx, "oa-sip", func(t *transfer.Transfer) {
		t.Return = &transfer.ReturnResult{Method: transfer.ReturnBye, Result: transfer.ReturnFailed, Reason: "x", Fallback: transfer.ReturnBye, StartedAt: now, EndedAt: now}
	}); err != nil {
		t.Fatal(err)
	}
	e.offset.Store(int64(2 * ttl))
	if _, err := e.svc.SweepExpired(ctx); err != nil {
		t.Fatal(err)
	}
	seen := map[webhook.EventType]bool{}
	for _, ev := range e.events() {
		seen[ev.Type] = true
		var body any
		if err := json.Unmarshal(ev.Body, &body); err != nil {
			t.Fatal(err)
		}
		for _, typ := range webhook.EventTypes {
			schema := doc.Webhooks[string(typ)].Post.RequestBody.Value.Content.Get("application/json").Schema.Value
			err := schema.VisitJSON(body)
			if typ == ev.Type && err != nil {
				t.Errorf("%s body does not validate: %v\n%s", ev.Type, err, ev.Body)
			}
			if typ != ev.Type && err == nil {
				t.Errorf("%s body validates as %s", ev.Type, typ)
			}
		}
	}
	if len(seen) != len(webhook.EventTypes) {
		t.Errorf("event types seen %v, want all of %v", seen, webhook.EventTypes)
	}
	id := doc.Components.Parameters["WebhookId"].Value.Schema.Value
	if err := id.VisitJSON(webhook.NewEventID()); err != nil {
		t.Errorf("webhook-id schema refuses an event id: %v", err)
	}
}

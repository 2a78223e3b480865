package control_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/handoff/handoff/transfer"
)

// GET shows what the INVITE that took the call said (sip.inbound), as the
// contract document describes it: the contract transport checks the body
// against openapi.yaml. POST never carries it.
func TestGetShowsSIPInbound(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := newID("inb")
	created := e.create(credA, sipBody(id, map[string]any{"returnTransferType": "REFER", "returnUri": "sip:back@ivr.example.com"}))
	expect(t, created, 200, "")
	if created.get("sip.inbound") != nil {
		t.Fatalf("POST shows sip.inbound: %s", created.raw)
	}
	if g := e.fetch(credA, id); g.get("sip.inbound") != nil {
		t.Fatalf("GET of an unclaimed transfer shows sip.inbound: %s", g.raw)
	}
	in := &transfer.Inbound{
		CallID: "a84b4c76e66710@10.0.0.5", From: "sip:+15551234567@carrier.example", To: "sip:" + id + "@handoff.example.com:5060",
		UUI: []transfer.UUI{{Header: "User-to-User", Value: "00FA080019001038F725B3;encoding=hex", Encoding: "hex",
			Purpose: "isdn-uui", PD: "00", UCID: "00025000160955721139"}},
		AssertedIdentity: []string{`"Alice" <sip:+15551234567@carrier.example>`},
		Diversion:        []string{"<sip:+15557654321@pbx.example>;reason=unconditional;counter=1"},
		HistoryInfo:      []string{"<sip:+15557654321@pbx.example>;index=1"},
		CallInfo:         []string{"<urn:handoff:transfer:" + id + ">;purpose=handoff-transfer"},
		CallIDs:          map[string]string{"Cisco-GUID": "1234567890-1234567890-1234567890-1234567890"},
		Headers:          map[string]string{"X-Customer-Tier": "gold"},
	}
	if _, err := e.svc.ClaimWith(ctx, id, in.CallID, "node-1", in); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Answer(ctx, id, in.CallID); err != nil {
		t.Fatal(err)
	}
	g := e.fetch(credA, id)
	expect(t, g, 200, "")
	var body struct {
		SIP struct {
			Inbound *transfer.Inbound `json:"inbound"`
		} `json:"sip"`
	}
	if err := json.Unmarshal(g.raw, &body); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(body.SIP.Inbound, in) {
		t.Fatalf("sip.inbound\n got %+v\nwant %+v", body.SIP.Inbound, in)
	}
}

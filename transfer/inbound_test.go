package transfer

import (
	"context"
	"reflect"
	"testing"
)

func testInbound(callID string) *Inbound {
	return &Inbound{
		CallID: callID, From: "sip:+15551230000@carrier.example", To: "sip:t1@handoff.example",
		UUI: []UUI{{Header: "User-to-User", Value: "00FA080019001038F725B3;encoding=hex", Encoding: "hex",
			Purpose: "isdn-uui", PD: "00", UCID: "00025000160955721139"}},
		AssertedIdentity: []string{`"Alice" <sip:+15551230000@carrier.example>`, "<tel:+15551230000>"},
		Diversion:        []string{"<sip:+15557654321@pbx.example>;reason=unconditional;counter=1"},
		HistoryInfo:      []string{"<sip:+15557654321@pbx.example>;index=1"},
		CallInfo:         []string{"<urn:handoff:transfer:t1>;purpose=handoff-transfer"},
		CallIDs:          map[string]string{"X-Genesys-CallUUID": "4BOKLLA3VH66JF112M1CC9VHKS14F0KP"},
		Headers:          map[string]string{"X-Genesys-CallUUID": "4BOKLLA3VH66JF112M1CC9VHKS14F0KP"},
	}
}

// The inbound record rides on the claim in both stores (JSON round trip),
// survives the answer, and goes with an unclaim.
func TestClaimRecordsInbound(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		svc, _, _ := newTestService(t, k, map[string][]string{"US": {"+19995550100"}}, 0)
		ctx := context.Background()
		if _, _, err := svc.Create(ctx, "ivr", CreateRequest{ID: "t1", ExternalConversationID: "c", Type: TypeSIP}); err != nil {
			t.Fatal(err)
		}
		in := testInbound("call-a")
		if _, err := svc.ClaimWith(ctx, "t1", "call-a", "n1", in); err != nil {
			t.Fatal(err)
		}
		in.Headers["X-Changed"] = "after the claim" // the service keeps its own copy
		got, err := svc.Lookup(ctx, "t1")
		if err != nil || !reflect.DeepEqual(got.Inbound, testInbound("call-a")) {
			t.Fatalf("stored inbound %+v (%v), want %+v", got.Inbound, err, testInbound("call-a"))
		}
		if err := svc.Unclaim(ctx, "t1", "call-a"); err != nil {
			t.Fatal(err)
		}
		if got, _ := svc.Lookup(ctx, "t1"); got.Inbound != nil {
			t.Fatalf("inbound kept after unclaim: %+v", got.Inbound)
		}
		if _, err := svc.ClaimWith(ctx, "t1", "call-b", "n1", testInbound("call-b")); err != nil {
			t.Fatal(err)
		}
		on, err := svc.Answer(ctx, "t1", "call-b")
		if err != nil || on.Inbound == nil || on.Inbound.CallID != "call-b" {
			t.Fatalf("answered transfer's inbound %+v (%v)", on.Inbound, err)
		}
	})
}

func TestInboundCloneIsDeep(t *testing.T) {
	a := testInbound("c")
	b := a.Clone()
	b.UUI[0].Text = "x"
	b.CallIDs["k"] = "v"
	b.Diversion[0] = "y"
	if !reflect.DeepEqual(a, testInbound("c")) {
		t.Fatalf("changing the clone changed the original: %+v", a)
	}
	var none *Inbound
	if none.Clone() != nil || none.PrimaryUUI() != nil {
		t.Fatal("nil inbound")
	}
	if a.PrimaryUUI().UCID != "00025000160955721139" {
		t.Fatal("primary UUI")
	}
}

package sip

import (
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/transfer"
)

// encodeOutcome is the Refer-To URI of a transfer without inbound UUI or
// special names for out under cfg.
func encodeOutcome(uri string, out transfer.OutputContext, cfg ReturnConfig) (string, error) {
	return withContext(uri, newReturnContext(&transfer.Transfer{ID: "t1"}, out, cfg), cfg.ContextEncoding)
}

var billing = transfer.OutputContext{TransferType: "AGENT", CurrentTaskName: "Billing",
	TransferVariables:  map[string]string{"b": "x y&z", "a": "1"},
	ReferenceVariables: map[string]string{"intent": "pay_bill"}}

// genesysReturn is the returnUri form Genesys documents for UUI on a REFER
// (help.mypurecloud.com, "UUI data formats": Refer-To:
// <sip:address@ip?User-to-User=XXhexdata%3Bencoding%3Dhex>).
const genesysReturn = "sip:+15551234567@ivr.example.com?User-to-User=00FA1B2C%3Bencoding%3Dhex"

func avayaInbound() *transfer.Inbound {
	return &transfer.Inbound{UUI: []transfer.UUI{{Header: hdrUUI, Value: "00FA080019001038F725B3;encoding=hex", Encoding: "hex", Purpose: "isdn-uui"}}}
}

// The returnUri comes back exactly as given, its own URI headers first and
// untouched, Handoff's after them; a name it already has is not repeated.
func TestWithContextKeepsTheReturnURI(t *testing.T) {
	for _, tc := range []struct {
		name, uri string
		enc       ContextEncoding
		inbound   *transfer.Inbound
		passUUI   bool
		want      string
	}{
		{"Genesys UUI, headers", genesysReturn, ContextHeaders, avayaInbound(), true,
			genesysReturn + "&X-Handoff-Transfer-Type=AGENT&X-Handoff-Task=Billing&X-Handoff-Var-a=1&X-Handoff-Var-b=x%20y%26z"},
		{"Genesys UUI, uui encoding: theirs wins", genesysReturn, ContextUUI, nil, true,
			genesysReturn + "&X-Handoff-Transfer-Type=AGENT&X-Handoff-Task=Billing&X-Handoff-Var-a=1&X-Handoff-Var-b=x%20y%26z"},
		{"user parameters and URI parameters, params", "sip:+15551234567;npdi;rn=+15550000000@gw.example.com;user=phone?User-to-User=00FA1B2C%3Bencoding%3Dhex", ContextParams, nil, true,
			"sip:+15551234567;npdi;rn=+15550000000@gw.example.com;user=phone;x-handoff-transfer-type=AGENT;x-handoff-task=Billing;x-handoff-var-a=1;x-handoff-var-b=x%20y%26z?User-to-User=00FA1B2C%3Bencoding%3Dhex"},
		{"a header the URI already has", "sip:q@ivr.example.com?x-handoff-task=Fixed", ContextHeaders, nil, false,
			"sip:q@ivr.example.com?x-handoff-task=Fixed&X-Handoff-Transfer-Type=AGENT&X-Handoff-Var-a=1&X-Handoff-Var-b=x%20y%26z"},
		{"a parameter the URI already has", "sip:q@ivr.example.com;X-Handoff-Task=Fixed", ContextParams, nil, false,
			"sip:q@ivr.example.com;X-Handoff-Task=Fixed;x-handoff-transfer-type=AGENT;x-handoff-var-a=1;x-handoff-var-b=x%20y%26z"},
		{"inbound UUI passed through", "sip:q@ivr.example.com", ContextHeaders, avayaInbound(), true,
			"sip:q@ivr.example.com?User-to-User=00FA080019001038F725B3%3Bencoding%3Dhex&X-Handoff-Transfer-Type=AGENT&X-Handoff-Task=Billing&X-Handoff-Var-a=1&X-Handoff-Var-b=x%20y%26z"},
		{"pass-through off", "sip:q@ivr.example.com", ContextHeaders, avayaInbound(), false,
			"sip:q@ivr.example.com?X-Handoff-Transfer-Type=AGENT&X-Handoff-Task=Billing&X-Handoff-Var-a=1&X-Handoff-Var-b=x%20y%26z"},
		{"empty query", "sip:q@ivr.example.com?", ContextHeaders, nil, false,
			"sip:q@ivr.example.com?X-Handoff-Transfer-Type=AGENT&X-Handoff-Task=Billing&X-Handoff-Var-a=1&X-Handoff-Var-b=x%20y%26z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ReturnConfig{ContextEncoding: tc.enc, UUIPassthrough: tc.passUUI}
			cfg.defaults()
			tr := &transfer.Transfer{ID: "t1", Inbound: tc.inbound}
			got, err := withContext(tc.uri, newReturnContext(tr, billing, cfg), tc.enc)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("\n got %s\nwant %s", got, tc.want)
			}
			var u sip.Uri
			if err := sip.ParseUri(got, &u); err != nil {
				t.Fatalf("%s does not parse: %v", got, err)
			}
		})
	}
}

// context_encoding uui: the outcome also rides as User-to-User inside the
// Refer-To URI, hex after the IA5 discriminator, within 128 hex digits.
func TestOutcomeAsUUI(t *testing.T) {
	cfg := ReturnConfig{ContextEncoding: ContextUUI}
	cfg.defaults()
	got, err := withContext("sip:q@ivr.example.com", newReturnContext(&transfer.Transfer{ID: "t1", Inbound: avayaInbound()}, billing, cfg), ContextUUI)
	if err != nil {
		t.Fatal(err)
	}
	_, query, _ := strings.Cut(got, "?")
	first, rest, _ := strings.Cut(query, "&")
	if rest != "X-Handoff-Transfer-Type=AGENT&X-Handoff-Task=Billing&X-Handoff-Var-a=1&X-Handoff-Var-b=x%20y%26z" {
		t.Errorf("the URI headers after the UUI: %s", rest)
	}
	value, err := url.PathUnescape(strings.TrimPrefix(first, "User-to-User="))
	if err != nil || !strings.HasPrefix(first, "User-to-User=") {
		t.Fatalf("first URI header %q", first)
	}
	// Read back the way an inbound UUI is read: the 04 discriminator goes.
	u, reason := parseUUI(hdrUUI, value)
	if reason != "" || u.PD != "04" || u.Text != "transfer=AGENT&task=Billing&a=1&b=x%20y%26z" {
		t.Fatalf("outcome UUI %q reads as %+v (%s)", value, u, reason)
	}

	long := transfer.OutputContext{TransferType: "SYSTEM", TransferVariables: map[string]string{
		"a": strings.Repeat("1", 20), "b": strings.Repeat("2", 20), "c": strings.Repeat("3", 20)}}
	v := outcomeUUI(long)
	data, _, _ := strings.Cut(v, ";")
	raw, _ := hex.DecodeString(data)
	if len(data) > maxUUIHex || string(raw[1:]) != "transfer=SYSTEM&a="+strings.Repeat("1", 20)+"&b="+strings.Repeat("2", 20) {
		t.Fatalf("capped UUI: %d hex digits, %q", len(data), raw)
	}
	if outcomeUUI(transfer.OutputContext{}) != "" {
		t.Fatal("an empty outcome gave a UUI")
	}
}

// The X-GA- names: conversation id, transfer type, transfer variables
// first, then reference variables, as URI headers; at most 1024 bytes,
// the rest dropped without a marker.
func TestGANamesOnTheReturn(t *testing.T) {
	tr := &transfer.Transfer{ID: "t1", ExternalConversationID: "conv-12345", SIP: &transfer.SIPReturn{ContextNames: ContextNamesGA}}
	out := transfer.OutputContext{TransferType: "SYSTEM",
		TransferVariables:  map[string]string{"priority": "high", "next_action": "schedule_callback"},
		ReferenceVariables: map[string]string{"last_payment_date": "2025-01-10", "account_balance": "1250.00"}}
	cfg := ReturnConfig{MaxContextBytes: 4096}
	cfg.defaults()
	got, err := withContext("sip:your-sbc.example.com", newReturnContext(tr, out, cfg), ContextHeaders)
	if err != nil {
		t.Fatal(err)
	}
	// The example of the public "SIP Headers Transfer" page, to the letter.
	want := "sip:your-sbc.example.com?X-GA-extConId=conv-12345&X-GA-transfer=SYSTEM&X-GA-tv-next_action=schedule_callback&X-GA-tv-priority=high&X-GA-rv-account_balance=1250.00&X-GA-rv-last_payment_date=2025-01-10"
	if got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
	out.ReferenceVariables["zz"] = strings.Repeat("r", 1000)
	got, _ = withContext("sip:your-sbc.example.com", newReturnContext(tr, out, cfg), ContextHeaders)
	if !strings.HasSuffix(got, "X-GA-rv-last_payment_date=2025-01-10") || strings.Contains(got, "zz") || strings.Contains(got, "Truncated") {
		t.Fatalf("past the 1024-byte limit (max_context_bytes 4096): %s", got)
	}
	if n := len(got) - len("sip:your-sbc.example.com?"); n > gaMaxContextBytes {
		t.Fatalf("%d bytes of context", n)
	}
}

// The return INVITE: the returnUri's URI headers become headers (escapes
// decoded, structural ones refused), then Handoff's, never a name twice;
// with context_encoding uui the outcome is a User-to-User header unless the
// URI gave one.
func TestAppendContextOnTheReturnInvite(t *testing.T) {
	headersOf := func(uri string, enc ContextEncoding) map[string][]string {
		t.Helper()
		var target sip.Uri
		if err := sip.ParseUri(uri, &target); err != nil {
			t.Fatal(err)
		}
		cfg := ReturnConfig{ContextEncoding: enc}
		cfg.defaults()
		req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", Host: "192.0.2.9"})
		appendContext(req, target.Headers, newReturnContext(&transfer.Transfer{ID: "t1"}, billing, cfg))
		got := map[string][]string{}
		for _, h := range req.Headers() {
			got[h.Name()] = append(got[h.Name()], h.Value())
		}
		return got
	}
	got := headersOf("sip:ret@pbx.example.com?X-Route=sales%20queue&Via=SIP%2F2.0%2FUDP%20evil&X-Handoff-Task=Fixed&User-to-User=00FA1B2C%3Bencoding%3Dhex", ContextUUI)
	want := map[string][]string{
		"X-Route": {"sales queue"}, "X-Handoff-Task": {"Fixed"}, "User-to-User": {"00FA1B2C;encoding=hex"},
		"X-Handoff-Transfer-Id": {"t1"}, "X-Handoff-Transfer-Type": {"AGENT"}, "X-Handoff-Var-a": {"1"}, "X-Handoff-Var-b": {"x y&z"},
	}
	if len(got) != len(want) {
		t.Fatalf("headers %v, want %v", got, want)
	}
	for name, v := range want {
		if len(got[name]) != 1 || got[name][0] != v[0] {
			t.Errorf("%s: %q, want %q", name, got[name], v)
		}
	}
	got = headersOf("sip:ret@pbx.example.com", ContextUUI)
	if u, reason := parseUUI(hdrUUI, got["User-to-User"][0]); reason != "" || u.Text != "transfer=AGENT&task=Billing&a=1&b=x%20y%26z" {
		t.Fatalf("outcome UUI header %q", got["User-to-User"])
	}
}

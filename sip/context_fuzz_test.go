package sip

import (
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/transfer"
)

var (
	pdPattern   = regexp.MustCompile(`^[0-9A-F]{2}$`)
	ucidPattern = regexp.MustCompile(`^[0-9]{20}$`)
)

// clean reports whether v may be stored or sent: bounded, one line, no
// control character.
func clean(v string, limit int) bool { return len(v) <= limit && !hasControl(v) }

// FuzzInboundContext: whatever an INVITE's UUI, identity, history,
// Call-Info, platform-id and X- headers hold, what Handoff keeps is
// bounded and free of control characters, the UUI fields are well formed,
// and a transfer id read from Call-Info or UUI obeys the id rule.
func FuzzInboundContext(f *testing.F) {
	f.Add("00FA080019001038F725B3;encoding=hex", "account 42;encoding=ascii", `"Alice" <sip:+15551230000@x>, <tel:+1555>`,
		"<sip:+1555@pbx>;reason=unconditional;counter=1", "<urn:handoff:transfer:t-1>;purpose=handoff-transfer", "4BOKLLA3VH66")
	f.Add("04313233;pd=04;encoding=hex;purpose=isdn-uui, 41;purpose=isdn-uui", `"a\"b";encoding=ascii`, "<sip:%00@h>",
		`"x,y" <sip:a@b>;index="1,2"`, "<sip:t%2D1@h>;purpose=HANDOFF-TRANSFER, <http://a>;purpose=icon", "\x01")
	f.Add(strings.Repeat("FA08", 300), "", "", "", "", strings.Repeat("x", 2000))
	f.Fuzz(func(t *testing.T, uui, alias, pai, diversion, callInfo, xval string) {
		req, ok := fuzzRequest("INVITE", "sip:t@192.0.2.2", []string{
			"User-to-User: " + uui, "x-User-to-User: " + alias, "P-Asserted-Identity: " + pai,
			"Diversion: " + diversion, "History-Info: " + diversion, "Call-Info: " + callInfo,
			"Cisco-GUID: " + xval, "X-Genesys-CallUUID: " + xval, "X-Custom: " + xval,
		}, "")
		if !ok {
			return
		}
		s := &Server{metrics: newMetrics()}
		in := s.readInbound(req, slog.New(slog.DiscardHandler))
		checkInbound(t, in)
		for k, v := range identityParams(in) {
			if !clean(v, (maxInboundValue+2)*maxInboundEntries) || k == "" {
				t.Fatalf("identity %s = %q", k, v)
			}
		}
		for _, c := range (&Server{cfg: Config{TransferHeader: DefaultTransferHeader}}).idCandidates(req, in) {
			if !transferIDPattern.MatchString(c.id) {
				t.Fatalf("candidate id %q from %s", c.id, c.source)
			}
		}
	})
}

func checkInbound(t *testing.T, in *transfer.Inbound) {
	t.Helper()
	if len(in.UUI) > maxInboundEntries {
		t.Fatalf("%d UUI values", len(in.UUI))
	}
	for _, u := range in.UUI {
		if !clean(u.Value, maxUUIBytes) || (u.PD != "" && !pdPattern.MatchString(u.PD)) ||
			(u.UCID != "" && !ucidPattern.MatchString(u.UCID)) || (u.Text != "" && !printable([]byte(u.Text))) {
			t.Fatalf("UUI %+v", u)
		}
	}
	for _, list := range [][]string{in.AssertedIdentity, in.Diversion, in.HistoryInfo, in.CallInfo} {
		if len(list) > maxInboundEntries {
			t.Fatalf("%d entries", len(list))
		}
		for _, v := range list {
			if !clean(v, maxInboundValue) {
				t.Fatalf("kept %q", v)
			}
		}
	}
	if len(in.Headers) > maxInboundHeaders {
		t.Fatalf("%d X- headers", len(in.Headers))
	}
	for _, m := range []map[string]string{in.Headers, in.CallIDs} {
		for k, v := range m {
			if !clean(v, maxInboundValue) || k == "" {
				t.Fatalf("kept %s = %q", k, v)
			}
		}
	}
}

// FuzzReturnContext: whatever the returnUri, the outcome and the inbound
// UUI hold, the Refer-To URI keeps the returnUri as given, parses, stays on
// one line, and the return INVITE's headers carry no control character
// and no URI header that makes the request what it is.
func FuzzReturnContext(f *testing.F) {
	f.Add(genesysReturn, "AGENT", "Billing", "digits", "12#", "00FA08;encoding=hex", uint8(0), false)
	f.Add("sip:+1555;npdi@gw;user=phone?X-A=%0D%0AVia%3A%20evil&Via=x&User-to-User=1", "S\r\nX", "t", "k\x00", "v\n", "", uint8(1), true)
	f.Add("sips:q@[::1]:5061;transport=tls?", "", "", "", "", "\"q\";encoding=ascii", uint8(2), true)
	f.Fuzz(func(t *testing.T, uri, typ, task, k, v, inboundUUI string, enc uint8, ga bool) {
		if !controlURI(uri) {
			return
		}
		cfg := ReturnConfig{ContextEncoding: []ContextEncoding{ContextHeaders, ContextParams, ContextUUI}[enc%3], UUIPassthrough: true}
		cfg.defaults()
		tr := &transfer.Transfer{ID: "t1", ExternalConversationID: task, SIP: &transfer.SIPReturn{}}
		if ga {
			tr.SIP.ContextNames = ContextNamesGA
		}
		if u, reason := parseUUI(hdrUUI, inboundUUI); reason == "" {
			tr.Inbound = &transfer.Inbound{UUI: []transfer.UUI{u}}
		}
		out := transfer.OutputContext{TransferType: typ, CurrentTaskName: task,
			TransferVariables: map[string]string{k: v}, ReferenceVariables: map[string]string{v: k}}
		rc := newReturnContext(tr, out, cfg)
		checkReferTarget(t, uri, rc, cfg.ContextEncoding)
		var target sip.Uri
		if err := sip.ParseUri(uri, &target); err != nil {
			return
		}
		req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", Host: "192.0.2.9"})
		appendContext(req, target.Headers, rc)
		for _, h := range req.Headers() {
			if !validHeaderToken(h.Name()) || hasControl(h.Value()) || uriHeadersRefused[strings.ToLower(h.Name())] {
				t.Fatalf("return INVITE header %q: %q", h.Name(), h.Value())
			}
		}
	})
}

func checkReferTarget(t *testing.T, uri string, rc returnContext, enc ContextEncoding) {
	t.Helper()
	got, err := withContext(uri, rc, enc)
	if err != nil {
		t.Fatalf("withContext(%q): %v", uri, err)
	}
	base, query, _ := strings.Cut(uri, "?")
	if !strings.HasPrefix(got, base) || (query != "" && !strings.Contains(got, "?"+query)) {
		t.Fatalf("returnUri %q not kept in %q", uri, got)
	}
	if strings.ContainsAny(got, "\r\n\x00 ") {
		t.Fatalf("CR/LF/NUL/space in %q", got)
	}
	var u sip.Uri
	if err := sip.ParseUri(got, &u); err != nil {
		t.Fatalf("%q does not parse: %v", got, err)
	}
}

// FuzzHeadersModeInput: X-Handoff- and X-GA- values become a bounded input
// context and return without control characters.
func FuzzHeadersModeInput(f *testing.F) {
	f.Add("call_routing", "conv-12345", "cust-67890", "accountNumber", "3434", "<sip:ivr@192.0.2.1>")
	f.Add("%0D%0AVia: x", "%00", "", "a b", "%E2%82%AC", "sip:%0D@h")
	f.Fuzz(func(t *testing.T, task, conv, customer, name, value, ret string) {
		req, ok := fuzzRequest("INVITE", "sip:agent@192.0.2.2", []string{
			gaTask + ": " + task, gaConversationID + ": " + conv, gaCustomerID + ": " + customer,
			gaVarPrefix + name + ": " + value, hdrVarPrefix + name + ": " + value, hdrReturnURI + ": " + ret,
		}, "")
		if !ok {
			return
		}
		in := headersInput(req)
		if !clean(in.TaskName, maxHeaderValueLen) || len(in.InputVariables) > maxHeaderVars {
			t.Fatalf("input %+v", in)
		}
		for k, v := range in.InputVariables {
			if !clean(v, maxHeaderValueLen) {
				t.Fatalf("variable %q = %q", k, v)
			}
		}
		if c := firstHeaderValue(req, hdrConversationID, gaConversationID); !clean(c, maxHeaderValueLen) {
			t.Fatalf("conversation id %q", c)
		}
		if r := headersReturn(req, ""); r.ReturnTransferType == transfer.ReturnRefer {
			if _, err := transfer.ParseSIPURI(r.ReturnURI); err != nil || hasControl(r.ReturnURI) {
				t.Fatalf("return URI %q taken: %v", r.ReturnURI, err)
			}
		}
	})
}

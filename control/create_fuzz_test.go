package control

import (
	"net/http"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/transfer"
)

// FuzzParseCreate decodes and validates arbitrary create bodies: never a
// panic, every refusal is a 400 or 422 envelope, and every accepted request
// satisfies the invariants the rest of Handoff relies on.
func FuzzParseCreate(f *testing.F) {
	for _, s := range []string{
		`{"id":"t-1","externalConversationId":"conv-1","type":"PHONE_NUMBER","phoneNumber":{"country":"US"}}`,
		`{"id":"t-2","externalConversationId":"c","type":"SIP","sip":{"returnTransferType":"REFER","returnUri":"sip:ivr@192.0.2.1:5060;transport=udp"},` +
			`"inputContext":{"taskName":"Billing","inputVariables":{"accountId":"42","lang":"en-US"}}}`,
		`{"id":"t-3","externalConversationId":"c","type":"SIP","sip":{"returnTransferType":"INVITE","returnUri":"sips:queue@ivr.example.com?X-Foo=bar",` +
			`"returnInviteAuthentication":{"username":"trunk","password":"s3cret"}}}`,
		`{"id":"t-4","externalConversationId":"c","type":"SIP","sip":{"returnTransferType":"BYE"}}`,
		`{"id":"t-5","externalConversationId":"c","type":"SIP","sip":null,"inputContext":null}`,
		`{"id":"","type":7}`,
		`{"id":"a","externalConversationId":"c","type":"SIP","sip":{"returnTransferType":"REFER","returnUri":"sip:a@b\r\nX: y"}}`,
		`{"id":"a","externalConversationId":"c","type":"PHONE_NUMBER","phoneNumber":{"country":"ü"}}`,
		`[]`, `null`, ``, `{"id":"a"`, `{"id":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, e := parseCreate(body)
		if e != nil {
			if req != nil {
				t.Fatal("request returned with an error")
			}
			if e.status != http.StatusBadRequest && e.status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d for %q", e.status, body)
			}
			if e.code == "" || e.message == "" || !utf8.ValidString(e.message) && utf8.Valid(body) {
				t.Fatalf("error envelope %+v", e)
			}
			return
		}
		checkCreateInvariants(t, req)
	})
}

func checkCreateInvariants(t *testing.T, req *transfer.CreateRequest) {
	t.Helper()
	if !validID(req.ID) {
		t.Fatalf("accepted id %q", req.ID)
	}
	for _, c := range req.ID {
		if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~-", c) || len(req.ID) > maxIDLen {
			t.Fatalf("accepted id %q", req.ID)
		}
	}
	text := func(what, s string, required bool) {
		if required && s == "" || utf8.RuneCountInString(s) > maxTextLen || strings.IndexFunc(s, unicode.IsControl) >= 0 {
			t.Fatalf("accepted %s %q", what, s)
		}
	}
	text("externalConversationId", req.ExternalConversationID, true)
	switch req.Type {
	case transfer.TypePhoneNumber:
		if len(req.Country) != 2 || req.Country[0] < 'A' || req.Country[0] > 'Z' || req.Country[1] < 'A' || req.Country[1] > 'Z' {
			t.Fatalf("accepted country %q", req.Country)
		}
	case transfer.TypeSIP:
		if req.SIP == nil {
			t.Fatal("SIP transfer without sip")
		}
		switch req.SIP.ReturnTransferType {
		case transfer.ReturnBye:
		case transfer.ReturnRefer, transfer.ReturnInvite:
			if req.SIP.ReturnURI == "" {
				t.Fatalf("%s without returnUri", req.SIP.ReturnTransferType)
			}
		default:
			t.Fatalf("accepted returnTransferType %q", req.SIP.ReturnTransferType)
		}
		if u := req.SIP.ReturnURI; u != "" {
			var p sip.Uri
			if err := sip.ParseUri(u, &p); err != nil || (p.Scheme != "sip" && p.Scheme != "sips") || p.Host == "" ||
				len(u) > maxReturnURILen || strings.ContainsAny(u, "\r\n\t <>\"") {
				t.Fatalf("accepted returnUri %q (%v)", u, err)
			}
		}
		if a := req.SIP.Auth; a != nil {
			text("username", a.Username, true)
			if strings.IndexFunc(a.Password, unicode.IsControl) >= 0 {
				t.Fatal("accepted a password with control characters")
			}
		}
	default:
		t.Fatalf("accepted type %q", req.Type)
	}
	if in := req.InputContext; in != nil {
		text("taskName", in.TaskName, false)
		for k := range in.InputVariables {
			text("variable name", k, true)
		}
	}
}

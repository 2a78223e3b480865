package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

const (
	digestSecretResponse = "6629fae49393a05397450978507c4ef1"
	tracedCallID         = "a84b4c76e66710@caller.example"
)

var tracedInvite = strings.Join([]string{
	"INVITE sip:t-1@127.0.0.1:5060 SIP/2.0",
	"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK776asdhds",
	"From: <sip:ivr@127.0.0.1>;tag=1928301774",
	"To: <sip:t-1@127.0.0.1>",
	"Call-ID: " + tracedCallID,
	"CSeq: 2 INVITE",
	`Authorization: Digest username="carrier", realm="handoff", nonce="dcd98b7102dd2f0e", uri="sip:t-1@127.0.0.1:5060", response="` + digestSecretResponse + `", algorithm=MD5`,
	`proxy-authorization:Digest username="carrier",realm="proxy",nonce="abc",uri="sip:x",response="` + digestSecretResponse + `"`,
	"Content-Length: 0",
	"", "",
}, "\r\n")

func TestRedactSIP(t *testing.T) {
	in := []byte(tracedInvite)
	orig := bytes.Clone(in)
	out := string(redactSIP(in))
	if !bytes.Equal(in, orig) {
		t.Fatal("redactSIP modified its input")
	}
	for _, leak := range []string{digestSecretResponse, `username="carrier"`, "dcd98b7102dd2f0e"} {
		if strings.Contains(out, leak) {
			t.Errorf("redacted message still holds %q:\n%s", leak, out)
		}
	}
	for _, keep := range []string{
		"INVITE sip:t-1@127.0.0.1:5060 SIP/2.0\r\n",
		"Call-ID: " + tracedCallID + "\r\n",
		"Authorization: [REDACTED]\r\n",
		"proxy-authorization: [REDACTED]\r\n",
		"Content-Length: 0\r\n\r\n",
	} {
		if !strings.Contains(out, keep) {
			t.Errorf("redacted message lacks %q:\n%s", keep, out)
		}
	}

	// A folded credential header, a bare digest response elsewhere, and TCP
	// chunks cut in the middle of an Authorization line.
	cases := map[string]string{
		"folded":    "Authorization: Digest username=\"u\",\r\n  response=\"" + digestSecretResponse + "\"\r\nCSeq: 1 INVITE\r\n",
		"stray":     "X-Debug: response=" + digestSecretResponse + "\r\n",
		"tail cut":  "CSeq: 1 INVITE\r\nAuthorization: Digest username=\"u\", resp",
		"head cut":  "onse=\"" + digestSecretResponse + "\", cnonce=\"0a4f113b\"\r\nCSeq: 1 INVITE\r\n",
		"lowercase": "authorization : Digest response=" + digestSecretResponse + "\r\n",
		"sdes key":  "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + digestSecretResponse + "|2^31|1:4\r\na=ptime:20\r\n",
	}
	for name, msg := range cases {
		got := string(redactSIP([]byte(msg)))
		if strings.Contains(got, digestSecretResponse) || strings.Contains(got, `username="u"`) {
			t.Errorf("%s: not redacted: %q", name, got)
		}
		if !strings.Contains(got, redacted) {
			t.Errorf("%s: no %s marker: %q", name, redacted, got)
		}
	}
}

// The tracer logs each message once, redacted, with its Call-ID, and only
// while switched on.
func TestSIPTracerLogsRedacted(t *testing.T) {
	var buf bytes.Buffer
	tr := &sipTracer{log: slog.New(slog.NewJSONHandler(&buf, nil))}
	tr.SIPTraceRead("UDP", "127.0.0.1:5060", "127.0.0.1:5070", []byte(tracedInvite))
	if buf.Len() != 0 {
		t.Fatalf("tracer logged while off: %s", buf.String())
	}
	tr.on.Store(true)
	tr.SIPTraceRead("UDP", "127.0.0.1:5060", "127.0.0.1:5070", []byte(tracedInvite))
	tr.SIPTraceWrite("TCP", "127.0.0.1:5060", "127.0.0.1:5070", []byte(tracedInvite))
	if strings.Contains(buf.String(), digestSecretResponse) {
		t.Fatalf("digest response in the trace: %s", buf.String())
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d trace lines, want 2: %s", len(lines), buf.String())
	}
	for i, want := range []string{"in", "out"} {
		var rec map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["msg"] != "sip message" || rec["direction"] != want || rec["call_id"] != tracedCallID ||
			!strings.Contains(rec["sip"].(string), "Authorization: [REDACTED]") {
			t.Errorf("trace line %d: %v", i, rec)
		}
	}
}

func TestHeaderValue(t *testing.T) {
	msg := []byte("BYE sip:a@b SIP/2.0\r\ni: compact-id\r\n\r\nCall-ID: body\r\n")
	if got := headerValue(msg, "call-id", "i"); got != "compact-id" {
		t.Errorf("compact Call-ID: %q", got)
	}
	if got := headerValue([]byte("SIP/2.0 200 OK\r\n\r\nCall-ID: x\r\n"), "call-id", "i"); got != "" {
		t.Errorf("Call-ID from the body: %q", got)
	}
}

package sip

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

// fuzzRequest builds a request as the wire would deliver it: the text is
// assembled and run through sipgo's parser, so values reach the helpers
// exactly as they would from a socket. ok is false when sipgo refuses it.
func fuzzRequest(method, ruri string, headers []string, body string) (*sip.Request, bool) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, ruri)
	b.WriteString("Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-fuzz\r\n")
	b.WriteString("From: <sip:ivr@192.0.2.1>;tag=f1\r\nTo: <sip:handoff@192.0.2.2>\r\n")
	fmt.Fprintf(&b, "Call-ID: fuzz-1@192.0.2.1\r\nCSeq: 1 %s\r\nMax-Forwards: 70\r\n", method)
	b.WriteString("Contact: <sip:ivr@192.0.2.1:5060>\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	msg, err := sip.ParseMessage([]byte(b.String()))
	if err != nil {
		return nil, false
	}
	req, ok := msg.(*sip.Request)
	return req, ok
}

var e164 = regexp.MustCompile(`^\+[0-9]+$`)

// FuzzCorrelation: the Request-URI user part, the dialled-number forms and
// the headers-mode value reader, on arbitrary Request-URIs and values.
func FuzzCorrelation(f *testing.F) {
	for _, s := range []string{
		"sip:+19995550100@handoff.example.com", "sip:19995550100;npdi;rn=+19995550000@192.0.2.2;user=phone",
		"tel:+1-999-555-0100;phone-context=example.com", "sip:t-1%2Fx@127.0.0.1:5060;transport=tcp",
		"sip:0044(20)7946.0000@gw", "sip:%ZZ@h", "sip:handoff@h?X-Handoff-Task=Billing", "sips:@h", "sip:h",
	} {
		f.Add(s, "%0D%0Ainjected%20value")
	}
	f.Fuzz(func(t *testing.T, ruri, value string) {
		checkCandidates := func(in string) {
			for _, c := range numberCandidates(in) {
				if !e164.MatchString(c) {
					t.Fatalf("numberCandidates(%q) gave %q", in, c)
				}
			}
		}
		checkCandidates(ruri)
		if req, ok := fuzzRequest("INVITE", ruri, nil, ""); ok {
			user := requestUser(req)
			checkCandidates(user)
		}
		v := headerValue(value)
		if len(v) > maxHeaderValueLen {
			t.Fatalf("headerValue gave %d bytes", len(v))
		}
		if transferIDPattern.MatchString(value) && strings.ContainsAny(value, "\r\n@;<>") {
			t.Fatalf("transfer id pattern accepted %q", value)
		}
	})
}

// FuzzInfoDTMF: INFO bodies in any content type give a valid key or an error.
func FuzzInfoDTMF(f *testing.F) {
	f.Add("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n")
	f.Add("application/dtmf-relay; charset=utf-8", "signal= 11\nduration=-5")
	f.Add("Application/DTMF", "#")
	f.Add("application/dtmf", "10")
	f.Add("text/plain", "1")
	f.Fuzz(func(t *testing.T, ct, body string) {
		req, ok := fuzzRequest("INFO", "sip:handoff@192.0.2.2", []string{"Content-Type: " + ct}, body)
		if !ok {
			return
		}
		d, err := parseInfoDTMF(req)
		if err != nil {
			if !errors.Is(err, errNotDTMF) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if !strings.ContainsRune("0123456789*#ABCD", d.Digit) || d.Duration < 0 {
			t.Fatalf("DTMF %+v from %q %q", d, ct, body)
		}
	})
}

// FuzzSessionTimer: Session-Expires/Supported give an interval at least
// Min-SE, nothing, or a well-formed Min-SE refusal.
func FuzzSessionTimer(f *testing.F) {
	f.Add("Session-Expires: 1800;refresher=uac", "Supported: timer, 100rel", uint16(90))
	f.Add("x: 60", "k: timer", uint16(90))
	f.Add("Session-Expires: 99999999999999999999", "Require: timer", uint16(90))
	f.Add("Session-Expires: -1", "Supported: TIMER", uint16(0))
	f.Fuzz(func(t *testing.T, se, supported string, minSE uint16) {
		req, ok := fuzzRequest("INVITE", "sip:t@192.0.2.2", []string{se, supported}, "")
		if !ok {
			return
		}
		min := time.Duration(minSE) * time.Second
		interval, reject := negotiateSessionTimer(req, min)
		switch {
		case reject != nil:
			if interval != 0 || reject.Name() != "Min-SE" || reject.Value() != fmt.Sprint(minSE) {
				t.Fatalf("refusal %v with interval %v", reject, interval)
			}
		case interval < 0, interval > 0 && interval < min:
			t.Fatalf("interval %v with Min-SE %v", interval, min)
		}
		tm := &sessionTimer{}
		tm.refresh(interval)
		if d := tm.deadline(); d < 0 || d > interval {
			t.Fatalf("deadline %v for interval %v", d, interval)
		}
	})
}

// FuzzNotify: the REFER subscription's NOTIFYs (event and sipfrag status).
func FuzzNotify(f *testing.F) {
	f.Add("Event: refer;id=1", "Subscription-State: terminated;reason=noresource", "SIP/2.0 200 OK\r\n")
	f.Add("o: REFER", "Subscription-State: active;expires=60", "SIP/2.0 100 Trying")
	f.Add("Event: presence", "Subscription-State: pending", "SIP/2.0 99999999999999999999 x")
	f.Add("Event: refer", "", "garbage")
	f.Fuzz(func(t *testing.T, event, state, body string) {
		req, ok := fuzzRequest("NOTIFY", "sip:handoff@192.0.2.2", []string{event, state, "Content-Type: message/sipfrag"}, body)
		if !ok {
			return
		}
		_ = isReferEvent(req)
		code, _ := sipfragStatus(req)
		if code != 0 && (code < 100 || code > 699) {
			t.Fatalf("status %d", code)
		}
	})
}

// controlURI mirrors the API's returnUri check (control.checkSIPURI): the
// URIs withContext may be given.
func controlURI(s string) bool {
	if s == "" || len(s) > 2048 || strings.ContainsFunc(s, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == '<' || r == '>' || r == '"' || r > 0x7e
	}) {
		return false
	}
	var u sip.Uri
	return sip.ParseUri(s, &u) == nil && (u.Scheme == "sip" || u.Scheme == "sips") && u.Host != "" && !u.Wildcard
}

// FuzzWithContext: the agent's outcome attached to a returnUri always
// gives a URI sipgo parses, on one line, within the configured size.
func FuzzWithContext(f *testing.F) {
	f.Add("sip:ivr@192.0.2.1:5060", "AGENT", "Billing", "digits", "12#", "note", "line1\r\nVia: evil", false, uint16(1024))
	f.Add("sips:queue@ivr.example.com;transport=tls?X-A=1", "SYSTEM", "", "a b", "ü", "", "", true, uint16(40))
	f.Add("sip:+15551234567;npdi@gw;user=phone", "", "t", "k", strings.Repeat("v", 300), "k2", "%00", false, uint16(10))
	f.Add("sip:h?", "X", "", "", "", "", "", true, uint16(0))
	f.Fuzz(func(t *testing.T, uri, typ, task, k1, v1, k2, v2 string, params bool, max uint16) {
		if !controlURI(uri) {
			return
		}
		cfg := ReturnConfig{MaxContextBytes: int(max)}
		if params {
			cfg.ContextEncoding = "params"
		}
		cfg.defaults()
		out := transfer.OutputContext{TransferType: typ, CurrentTaskName: task,
			TransferVariables: map[string]string{k1: v1, k2: v2}}
		got, err := encodeOutcome(uri, out, cfg)
		if err != nil {
			t.Fatalf("encodeOutcome(%q): %v", uri, err)
		}
		if strings.ContainsAny(got, "\r\n\x00") {
			t.Fatalf("CR/LF/NUL in %q", got)
		}
		var u sip.Uri
		if err := sip.ParseUri(got, &u); err != nil {
			t.Fatalf("withContext(%q) = %q does not parse: %v", uri, got, err)
		}
		if len(got) > len(uri)+cfg.MaxContextBytes+len("X-Handoff-Truncated=true")+2 {
			t.Fatalf("%d bytes of context over a cap of %d", len(got)-len(uri), cfg.MaxContextBytes)
		}
		// As the Refer-To value it stays on one header line.
		h := sip.NewHeader("Refer-To", "<"+got+">")
		if strings.ContainsAny(h.String(), "\r\n") {
			t.Fatalf("Refer-To header spans lines: %q", h.String())
		}
	})
}

const fuzzRealm = "handoff"

func fuzzAuthenticator() *authenticator {
	a := newAuthenticator([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, fuzzRealm, map[string]string{"alice": "s3cret", "": "empty"})
	a.key = []byte("fixed key for the fuzz target....")
	return a
}

// FuzzDigestAuth: arbitrary Authorization headers never panic and never
// pass; a correct response with one character changed never passes. In
// the header, NONCE stands for a nonce we issued now and OLDNONCE for one
// past its lifetime.
func FuzzDigestAuth(f *testing.F) {
	f.Add(`Digest username="alice", realm="handoff", nonce="NONCE", uri="sip:t@192.0.2.2", response="00000000000000000000000000000000", algorithm=MD5, qop=auth, nc=00000001, cnonce="x"`,
		"sip:t@192.0.2.2", "abc", uint32(1), "MD5", uint16(0))
	f.Add(`Digest username="alice",realm="handoff",nonce="OLDNONCE",uri="sip:a@b",response="",userhash=true`, "sip:a@b", "", uint32(0), "SHA-256", uint16(3))
	f.Add(`Digest username="", realm="handoff", nonce="NONCE", qop=auth-int, nc=-1`, "", "\"", uint32(0xffffffff), "SHA-512-256", uint16(40))
	f.Add(`Basic YWxpY2U6czNjcmV0`, "sip:x", "c", uint32(2), "md5", uint16(1))
	f.Add(`Digest ,,,=,"`, "sip:x", "c", uint32(2), "MD5-sess", uint16(1))
	a := fuzzAuthenticator()
	f.Fuzz(func(t *testing.T, raw, uri, cnonce string, nc uint32, alg string, flip uint16) {
		now := time.Unix(1_700_000_000, 0)
		fresh, old := a.nonce(now), a.nonce(now.Add(-nonceLifetime-time.Minute))
		raw = strings.ReplaceAll(strings.ReplaceAll(raw, "OLDNONCE", old), "NONCE", fresh)
		check := func(header string) verdict {
			req, ok := fuzzRequest("INVITE", "sip:t@192.0.2.2", []string{"Authorization: " + header}, "")
			if !ok {
				return forbidden
			}
			req.SetSource("192.0.2.1:5060")
			v, h := a.check(req, now)
			if v == challenge && h == nil {
				t.Fatal("challenge without WWW-Authenticate")
			}
			return v
		}
		if v := check(raw); v == allowed {
			t.Fatalf("allowed without a computed response: %q", raw)
		}
		// A correct answer to our challenge, then the same with one
		// character of the response changed.
		creds, err := digest.Digest(&digest.Challenge{Realm: fuzzRealm, Nonce: fresh, Algorithm: alg, QOP: []string{"auth"}},
			digest.Options{Method: "INVITE", URI: uri, Username: "alice", Password: "s3cret", Count: int(nc & 0x7fffffff), Cnonce: cnonce})
		if err != nil || creds.Response == "" {
			return
		}
		i := int(flip) % len(creds.Response)
		r := []byte(creds.Response)
		r[i] = "0123456789abcdef"[(strings.IndexByte("0123456789abcdef", r[i])+1)%16]
		creds.Response = string(r)
		if v := check(creds.String()); v == allowed {
			t.Fatalf("allowed with a wrong response: %q", creds.String())
		}
	})
}

// TestDigestAuthAcceptsCorrectResponse keeps FuzzDigestAuth honest: the
// unaltered answer it corrupts does pass, and a stale one is re-challenged.
func TestDigestAuthAcceptsCorrectResponse(t *testing.T) {
	a := fuzzAuthenticator()
	now := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		nonce string
		want  verdict
	}{{a.nonce(now), allowed}, {a.nonce(now.Add(-nonceLifetime - time.Minute)), challenge}} {
		for _, alg := range []string{"MD5", "SHA-256"} {
			creds, err := digest.Digest(&digest.Challenge{Realm: fuzzRealm, Nonce: tc.nonce, Algorithm: alg, QOP: []string{"auth"}},
				digest.Options{Method: "INVITE", URI: "sip:t@192.0.2.2", Username: "alice", Password: "s3cret", Count: 1, Cnonce: "abc"})
			if err != nil {
				t.Fatal(err)
			}
			req, ok := fuzzRequest("INVITE", "sip:t@192.0.2.2", []string{"Authorization: " + creds.String()}, "")
			if !ok {
				t.Fatal("request does not parse")
			}
			req.SetSource("192.0.2.1:5060")
			if v, _ := a.check(req, now); v != tc.want {
				t.Fatalf("%s: verdict %v, want %v", alg, v, tc.want)
			}
		}
	}
}

// FuzzMessage parses whole datagrams with sipgo's parser and runs every
// request through the helpers Handoff applies before and during a call.
func FuzzMessage(f *testing.F) {
	for _, s := range messageSeeds("127.0.0.1:5060", "TRANSFERID", 4000) {
		f.Add([]byte(s))
	}
	a := fuzzAuthenticator()
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := sip.ParseMessage(data)
		if err != nil {
			return
		}
		_ = msg.String()
		req, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		req.SetSource("192.0.2.1:5060")
		_, _ = a.check(req, time.Now())
		for _, c := range numberCandidates(requestUser(req)) {
			if !e164.MatchString(c) {
				t.Fatalf("candidate %q", c)
			}
		}
		_, _ = negotiateSessionTimer(req, 90*time.Second)
		_, _ = parseInfoDTMF(req)
		_ = isReferEvent(req)
		_, _ = sipfragStatus(req)
		_, _ = sip.DialogIDFromRequestUAS(req)
		_, _ = sip.DialogIDFromRequestUAC(req)
		info := callInfo(req, &transfer.Transfer{ID: "t"})
		_ = info
		if len(req.Body()) > 0 {
			if d, err := media.ParseSDP(req.Body()); err == nil {
				_, _ = media.Negotiate(d, media.DefaultCodecs)
			} else if w := warning(err); strings.ContainsAny(w.Value(), "\r\n") {
				t.Fatalf("Warning spans lines: %q", w.Value())
			}
		}
		if req.Via() != nil && req.From() != nil && req.To() != nil && req.CallID() != nil && req.CSeq() != nil {
			res := sip.NewResponseFromRequest(req, sip.StatusNotFound, "Not Found", nil)
			res.AppendHeader(sip.NewHeader("Retry-After", "30"))
			_ = res.String()
		}
	})
}

// messageSeeds are requests as carriers send them; host is where they are
// addressed, id the transfer they name and rtpPort the SDP's media port.
func messageSeeds(host, id string, rtpPort int) []string {
	sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n", rtpPort)
	req := func(method, ruri string, extra []string, body string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, ruri)
		b.WriteString("Via: SIP/2.0/UDP CLIENT;branch=z9hG4bK" + method + ";rport\r\n")
		b.WriteString("From: \"IVR\" <sip:ivr@127.0.0.1>;tag=a1\r\n")
		b.WriteString("To: <" + ruri + ">\r\n")
		b.WriteString("Call-ID: seed-" + method + "@127.0.0.1\r\n")
		fmt.Fprintf(&b, "CSeq: 1 %s\r\nMax-Forwards: 70\r\nContact: <sip:ivr@CLIENT>\r\nUser-Agent: IVR/1.0\r\n", method)
		for _, h := range extra {
			b.WriteString(h + "\r\n")
		}
		if body != "" {
			b.WriteString("Content-Type: application/sdp\r\n")
		}
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
		return b.String()
	}
	uri := "sip:" + id + "@" + host
	return []string{
		req("INVITE", uri, []string{"Supported: timer, replaces", "Session-Expires: 1800", "Allow: INVITE, ACK, BYE, CANCEL, INFO",
			"X-Handoff-Var-account: 42", "P-Asserted-Identity: <sip:+15551234567@carrier>"}, sdp),
		req("INVITE", "sip:+19995550100@"+host+";user=phone", []string{"X-Call-Transfer-Id: " + id}, sdp),
		req("INVITE", uri, []string{"Session-Expires: 30", "Supported: timer"}, ""),
		req("OPTIONS", "sip:"+host, []string{"Accept: application/sdp"}, ""),
		req("BYE", uri, []string{"Reason: Q.850;cause=16"}, ""),
		req("INFO", uri, []string{"Content-Type: application/dtmf-relay"}, "Signal=5\r\nDuration=160\r\n"),
		req("NOTIFY", uri, []string{"Event: refer", "Subscription-State: terminated", "Content-Type: message/sipfrag"}, "SIP/2.0 200 OK\r\n"),
		req("CANCEL", uri, nil, ""),
		req("REGISTER", "sip:"+host, []string{"Expires: 3600"}, ""),
		"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP CLIENT;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: r\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
		"INVITE sip:x@" + host + " SIP/2.0\r\nv: SIP/2.0/UDP CLIENT;branch=z9hG4bKc\r\nf: <sip:a@b>;tag=1\r\nt: <sip:x@y>\r\ni: compact\r\n" +
			"m: <sip:a@CLIENT>\r\nk: timer\r\nx: 90\r\nc: application/sdp\r\nl: 0\r\n\r\n",
		"\r\n\r\n",
	}
}

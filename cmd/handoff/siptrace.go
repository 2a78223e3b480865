package main

import (
	"bytes"
	"log/slog"
	"regexp"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"
)

// sipTracer logs every SIP message sipgo reads or writes, when log.sip_trace
// is on, as "sip message" lines at info level (the key is its own opt-in, so
// it shows without debug logs for everything else). Credentials are redacted:
// the values of Authorization and Proxy-Authorization (WWW-Authenticate and
// Proxy-Authenticate hold only challenges and are kept), any digest
// response= parameter and the SRTP keys of SDP bodies (a=crypto inline:)
// become [REDACTED].
//
// sipgo calls the tracer per datagram (UDP) or per read/write chunk (TCP): a
// TCP chunk may start or end in the middle of a line, so an unterminated
// last line, or a first line, that carries digest parameters is redacted whole.
type sipTracer struct {
	log *slog.Logger
	on  atomic.Bool
}

// installSIPTracer turns on sipgo's message hook for the whole process and
// routes it to t. sipgo reads sip.SIPDebug without synchronisation, so it is
// set once, before any SIP socket exists; t.on switches the output (reload).
func installSIPTracer(log *slog.Logger, on bool) *sipTracer {
	t := &sipTracer{log: log}
	t.on.Store(on)
	sip.SIPDebugTracer(t)
	sip.SIPDebug = true
	return t
}

func (t *sipTracer) SIPTraceRead(transport, laddr, raddr string, msg []byte) {
	t.trace("in", transport, laddr, raddr, msg)
}

func (t *sipTracer) SIPTraceWrite(transport, laddr, raddr string, msg []byte) {
	t.trace("out", transport, laddr, raddr, msg)
}

func (t *sipTracer) trace(dir, transport, laddr, raddr string, msg []byte) {
	if !t.on.Load() || len(msg) == 0 {
		return
	}
	t.log.Info("sip message",
		"direction", dir,
		"transport", transport,
		"local", laddr,
		"remote", raddr,
		"call_id", headerValue(msg, "call-id", "i"),
		"sip", string(redactSIP(msg)),
	)
}

const redacted = "[REDACTED]"

var (
	// A header line whose value is a credential (case-insensitive names).
	credentialHeader = regexp.MustCompile(`(?i)^(authorization|proxy-authorization)[ \t]*:`)
	// A digest response parameter wherever it appears.
	digestResponse = regexp.MustCompile(`(?i)\bresponse[ \t]*=[ \t]*("[^"]*"?|[^,\s]*)`)
	// Digest parameters that mark a fragment as part of a credential.
	digestParams = regexp.MustCompile(`(?i)\b(response|cnonce|username)[ \t]*=`)
	// An SDES key||salt (RFC 4568 a=crypto ... inline:<base64>|lifetime|MKI).
	sdesKey = regexp.MustCompile(`(?i)\binline:[^\s|;]*`)
)

// redactSIP returns msg with credential header values and digest responses
// replaced by [REDACTED]. msg itself is not modified (sipgo reuses it).
func redactSIP(msg []byte) []byte {
	lines := bytes.SplitAfter(msg, []byte("\n"))
	out := make([]byte, 0, len(msg))
	inCredential := false // inside a folded (continued) credential header
	for i, line := range lines {
		body, eol := splitEOL(line)
		terminated := len(eol) > 0
		continuation := len(body) > 0 && (body[0] == ' ' || body[0] == '\t')
		switch {
		case credentialHeader.Match(body):
			colon := bytes.IndexByte(body, ':')
			out = append(out, body[:colon+1]...)
			out = append(out, " "+redacted...)
			inCredential = true
		case continuation && inCredential:
			out = append(out, " "+redacted...)
		case (i == 0 || !terminated) && digestParams.Match(body):
			// A fragment cut from its header (TCP chunking): redact it whole.
			out = append(out, redacted...)
			inCredential = false
		default:
			inCredential = false
			body = digestResponse.ReplaceAll(body, []byte("response="+redacted))
			out = append(out, sdesKey.ReplaceAll(body, []byte("inline:"+redacted))...)
		}
		out = append(out, eol...)
	}
	return out
}

func splitEOL(line []byte) (body, eol []byte) {
	n := len(line)
	if n > 0 && line[n-1] == '\n' {
		n--
		if n > 0 && line[n-1] == '\r' {
			n--
		}
	}
	return line[:n], line[n:]
}

// headerValue returns the first value of the header named name (or its
// compact form) in a raw SIP message's header section, or "".
func headerValue(msg []byte, name, compact string) string {
	for len(msg) > 0 {
		i := bytes.IndexByte(msg, '\n')
		var line []byte
		if i < 0 {
			line, msg = msg, nil
		} else {
			line, msg = msg[:i], msg[i+1:]
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			return "" // end of headers
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		k = bytes.TrimSpace(k)
		if bytes.EqualFold(k, []byte(name)) || bytes.EqualFold(k, []byte(compact)) {
			return string(bytes.TrimSpace(v))
		}
	}
	return ""
}

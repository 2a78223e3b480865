package sip

import (
	"bytes"
	"net/netip"
	"strconv"
)

// rawHead is what the read path needs of a request, found in its bytes
// without parsing the message: enough to refuse a new INVITE statelessly
// (RFC 3261 §8.2.6: Via, From, To, Call-ID and CSeq copied into the
// answer) and to tell an INVITE that starts a call from one inside a
// dialog. Values are slices of the datagram.
type rawHead struct {
	method []byte
	vias   [][]byte // in order
	from   []byte
	to     []byte
	callID []byte
	cseq   []byte
}

// maxRawVias bounds the Via values kept; a request with more goes the slow
// way (sipgo parses it).
const maxRawVias = 8

// peekHead scans a datagram's request line and headers. ok is false for
// anything it does not fully understand (a response, folded headers, a
// missing header): the caller then leaves the message to sipgo.
func peekHead(b []byte) (h rawHead, ok bool) {
	line, rest, found := bytes.Cut(b, []byte("\r\n"))
	if !found {
		return h, false
	}
	method, _, _ := bytes.Cut(line, []byte(" "))
	if len(method) == 0 || bytes.Equal(method, []byte("SIP/2.0")) {
		return h, false
	}
	h.method = method
	for {
		line, rest, found = bytes.Cut(rest, []byte("\r\n"))
		if !found || len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return h, false // a folded header: not worth handling here
		}
		name, value, colon := bytes.Cut(line, []byte(":"))
		if !colon {
			return h, false
		}
		if !h.take(bytes.TrimSpace(name), bytes.TrimSpace(value)) {
			return h, false
		}
	}
	return h, len(h.vias) > 0 && h.from != nil && h.to != nil && h.callID != nil && h.cseq != nil
}

// take keeps one header's value if it is one of ours (full or compact
// name); false leaves the message to sipgo: too many Vias, several Vias in
// one header line (the top one is then only part of the value), or a
// second From, To, Call-ID or CSeq (sipgo reads the first, and the read
// path must judge the same call the handler will).
func (h *rawHead) take(name, value []byte) bool {
	switch {
	case headerIs(name, "via", "v"):
		if len(h.vias) == maxRawVias || bytes.IndexByte(value, ',') >= 0 {
			return false
		}
		h.vias = append(h.vias, value)
	case headerIs(name, "from", "f"):
		return once(&h.from, value)
	case headerIs(name, "to", "t"):
		return once(&h.to, value)
	case headerIs(name, "call-id", "i"):
		return once(&h.callID, value)
	case headerIs(name, "cseq", ""):
		return once(&h.cseq, value)
	}
	return true
}

// once sets *field to value unless it was set before.
func once(field *[]byte, value []byte) bool {
	if *field != nil {
		return false
	}
	*field = value
	return true
}

func headerIs(name []byte, full, compact string) bool {
	return bytes.EqualFold(name, []byte(full)) || (compact != "" && bytes.EqualFold(name, []byte(compact)))
}

// toTag is the To header's tag parameter, nil when it has none. Params
// follow the name-addr (after '>') or, without brackets, the URI.
func (h *rawHead) toTag() []byte {
	params := h.to
	if i := bytes.LastIndexByte(params, '>'); i >= 0 {
		params = params[i+1:]
	}
	for _, p := range bytes.Split(params, []byte(";"))[1:] {
		k, v, _ := bytes.Cut(bytes.TrimSpace(p), []byte("="))
		if bytes.EqualFold(bytes.TrimSpace(k), []byte("tag")) {
			return bytes.TrimSpace(v)
		}
	}
	return nil
}

// statelessAnswer is a final response to the request h describes, from
// src: its Via, From, To (with our tag), Call-ID and CSeq, the top Via
// marked with the source it came from (RFC 3261 §18.2.1, RFC 3581), then
// extra header lines.
func statelessAnswer(h *rawHead, src netip.AddrPort, status, tag string, extra ...string) []byte {
	b := make([]byte, 0, 512)
	b = append(b, "SIP/2.0 "...)
	b = append(b, status...)
	b = append(b, "\r\n"...)
	for i, v := range h.vias {
		b = append(b, "Via: "...)
		if i == 0 {
			b = appendReceived(b, v, src)
		} else {
			b = append(b, v...)
		}
		b = append(b, "\r\n"...)
	}
	b = appendHeader(b, "From", h.from)
	b = append(b, "To: "...)
	b = append(b, h.to...)
	b = append(b, ";tag="...)
	b = append(b, tag...)
	b = append(b, "\r\n"...)
	b = appendHeader(b, "Call-ID", h.callID)
	b = appendHeader(b, "CSeq", h.cseq)
	for _, x := range extra {
		b = append(b, x...)
		b = append(b, "\r\n"...)
	}
	return append(b, "Content-Length: 0\r\n\r\n"...)
}

func appendHeader(b []byte, name string, value []byte) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

// appendReceived writes the top Via with received= the source IP and, if
// it asked with a bare rport, rport= the source port.
func appendReceived(b, via []byte, src netip.AddrPort) []byte {
	parts := bytes.Split(via, []byte(";"))
	b = append(b, parts[0]...)
	for _, p := range parts[1:] {
		k := bytes.TrimSpace(p)
		switch {
		case bytes.EqualFold(k, []byte("rport")):
			b = append(b, ";rport="...)
			b = strconv.AppendUint(b, uint64(src.Port()), 10)
		case len(k) == 0, len(k) >= 9 && bytes.EqualFold(k[:9], []byte("received=")):
		default:
			b = append(b, ';')
			b = append(b, p...)
		}
	}
	b = append(b, ";received="...)
	return append(b, src.Addr().String()...)
}

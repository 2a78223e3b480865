package agent

import (
	"encoding/json"
	"net/url"
	"strings"
)

// startMessage is the start event: the call's ids, its facts both as
// Twilio's flat customParameters and as start.handoff, and the media format.
func (s *wsSession) startMessage(seq string) startMsg {
	info := s.info
	return startMsg{
		Event:          evStart,
		SequenceNumber: seq,
		StreamSid:      s.streamSid,
		Start: startBody{
			AccountSid:       s.cfg.accountSid(),
			StreamSid:        s.streamSid,
			CallSid:          s.callSid,
			Tracks:           []string{wireInbound},
			CustomParameters: customParameters(info),
			MediaFormat:      mediaFormat{Encoding: s.cfg.Format.Encoding, SampleRate: s.cfg.Format.SampleRate, Channels: 1},
			Handoff: startHandoff{
				TransferID:             info.TransferID,
				ExternalConversationID: info.ExternalConversationID,
				CallID:                 info.CallID,
				From:                   info.From,
				To:                     info.To,
				InputContext:           info.Input,
				Headers:                info.Headers,
				UUI:                    info.UUI,
				UUIText:                info.UUIText,
				Codec:                  callCodec(info),
				Identity:               info.Identity,
			},
		},
	}
}

// callCodec is start.handoff.codec, nil when the codec is not known yet.
func callCodec(info CallInfo) *codecInfo {
	if info.Codec == "" {
		return nil
	}
	return &codecInfo{Name: info.Codec, SampleRate: info.CodecRate}
}

// customParameters flattens the call's facts into Twilio's string map:
// inputVariables is one JSON-encoded string; X- headers keep their names;
// from_number and to_number are the numbers Pipecat's runner reads; the
// identity parameters keep the keys the SIP side gave them.
func customParameters(info CallInfo) map[string]string {
	p := map[string]string{"transferId": info.TransferID}
	set := func(k, v string) {
		if v != "" {
			p[k] = v
		}
	}
	set("externalConversationId", info.ExternalConversationID)
	set("callId", info.CallID)
	set("from", info.From)
	set("to", info.To)
	set("from_number", PhoneNumber(info.From))
	set("to_number", PhoneNumber(info.To))
	set("taskName", info.Input.TaskName)
	set("uui", info.UUI)
	set("uui_text", info.UUIText)
	if len(info.Input.InputVariables) > 0 {
		b, _ := json.Marshal(info.Input.InputVariables)
		p["inputVariables"] = string(b)
	}
	for k, v := range info.Identity {
		set(k, v)
	}
	for k, v := range info.Headers {
		p[k] = v
	}
	return p
}

// PhoneNumber is the user part of a sip:, sips: or tel: URI, as Twilio's
// From and To carry a number: user and URI parameters (";npdi",
// ";phone-context=…") left out, percent-escapes decoded, and when it is a
// telephone number the visual separators of RFC 3966 ("-", ".", "(", ")")
// removed. A URI with no user part, or of another scheme, gives "".
func PhoneNumber(uri string) string {
	scheme, rest, ok := strings.Cut(strings.Trim(uri, "<> "), ":")
	if !ok {
		return ""
	}
	var user string
	switch strings.ToLower(scheme) {
	case "tel":
		user = rest
	case "sip", "sips":
		if user, _, ok = strings.Cut(rest, "@"); !ok {
			return ""
		}
		user, _, _ = strings.Cut(user, ":") // a password
	default:
		return ""
	}
	user, _, _ = strings.Cut(user, ";")
	if u, err := url.PathUnescape(user); err == nil {
		user = u
	}
	if isTelephoneNumber(user) {
		user = strings.Map(func(r rune) rune {
			if strings.ContainsRune("-.()", r) {
				return -1
			}
			return r
		}, user)
	}
	return user
}

// isTelephoneNumber: an optional "+", then digits and visual separators,
// with at least one digit.
func isTelephoneNumber(s string) bool {
	s = strings.TrimPrefix(s, "+")
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case strings.ContainsRune("-.()", r):
		default:
			return false
		}
	}
	return digits > 0
}

// callSidFor is the start event's callSid: the SIP Call-ID (the transfer
// id when there is none) when every character of it may stand in a URL
// path as it is, since agents put the callSid unescaped into the Twilio
// hang-up URL (Pipecat does); otherwise a fresh Twilio-style one.
func callSidFor(info CallInfo) string {
	sid := info.CallID
	if sid == "" {
		sid = info.TransferID
	}
	if !pathSafe(sid) {
		return newCallSid()
	}
	return sid
}

// newCallSid is a Twilio-style call SID: "CA" and 32 hex digits.
func newCallSid() string { return "CA" + randomHex(16) }

// pathSafe reports whether s is not empty and made only of characters that
// HTTP clients leave alone in a path segment: RFC 3986's unreserved ones
// and "!*'()+:@". A "/", "?", "#" or "%" would change what the URL says.
func pathSafe(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("-._~!*'()+:@", r):
		default:
			return false
		}
	}
	return true
}

package sip

import "strings"

// splitOutside splits s at every sep that is outside a quoted string and
// outside <…>, the way SIP header lists and parameters are delimited
// (RFC 3261 §7.3.1: "a, b" lists; ";" parameters). Parts are trimmed.
func splitOutside(s string, sep byte) []string {
	var parts []string
	quoted, angle, escaped := false, false, false
	start := 0
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case escaped:
			escaped = false
		case quoted && ch == '\\':
			escaped = true
		case ch == '"':
			quoted = !quoted
		case !quoted && ch == '<':
			angle = true
		case !quoted && ch == '>':
			angle = false
		case !quoted && !angle && ch == sep:
			parts = append(parts, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(parts, strings.TrimSpace(s[start:]))
}

// param is one header parameter: name (lower-cased) and value (unquoted;
// "" for a flag).
type param struct{ name, value string }

// splitParams splits a header value into what precedes its parameters and
// the parameters themselves.
func splitParams(v string) (head string, params []param) {
	parts := splitOutside(v, ';')
	for _, p := range parts[1:] {
		name, value, _ := strings.Cut(p, "=")
		params = append(params, param{strings.ToLower(strings.TrimSpace(name)), unquote(strings.TrimSpace(value))})
	}
	return parts[0], params
}

// paramValue is the value of the parameter name in params ("" when absent)
// and whether it is there.
func paramValue(params []param, name string) (string, bool) {
	for _, p := range params {
		if p.name == name {
			return p.value, true
		}
	}
	return "", false
}

// unquote removes the quotes of a quoted-string and its backslash escapes.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	s = s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// addrURI is the URI of a name-addr or addr-spec header value:
// `"Alice" <sip:+1555@host>;tag=1` gives sip:+1555@host, as does
// `sip:+1555@host;tag=1`.
func addrURI(v string) string {
	if open := strings.IndexByte(v, '<'); open >= 0 {
		if end := strings.IndexByte(v[open:], '>'); end > 0 {
			return v[open+1 : open+end]
		}
		return ""
	}
	uri, _, _ := strings.Cut(strings.TrimSpace(v), ";")
	return uri
}

// printable reports whether b is not empty and all printable ASCII
// (space to tilde).
func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return len(b) > 0
}

// hasControl reports whether s holds a control character (C0 or DEL),
// which must never reach a header or a stored value.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

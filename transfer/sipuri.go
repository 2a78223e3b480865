package transfer

// The shape of a SIP transfer's returnUri, checked as text when the
// transfer is created so the API needs no SIP stack: the grammar of RFC
// 3261 section 25.1, a little stricter where a looser reading would let a
// bad URI through to the SIP side.

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// SIPURI is a sip: or sips: URI split into its parts, each as written
// (escapes kept).
type SIPURI struct {
	Scheme   string // "sip" or "sips", in lower case
	User     string // the user part, or empty when the URI names only a host
	Password string // RFC 3261 allows it and advises against it
	Host     string // a host name, an IPv4 address or a bracketed IPv6 address
	Port     int    // 0 when the URI has none
	Params   string // the URI parameters without the leading ';', e.g. "user=phone;transport=udp"
	Headers  string // the URI headers without the leading '?', e.g. "User-to-User=00FA%3Bencoding%3Dhex"
}

// Character classes of RFC 3261 section 25.1 (beyond letters and digits).
// The brackets of param-unreserved and hnv-unreserved are left out: sipgo
// takes a bracket after the host of a URI without a user part for the host.
const (
	markChars          = "-_.!~*'()"
	userUnreserved     = "&=+$,;?/"
	passwordUnreserved = "&=+$,"
	paramUnreserved    = "/:&+$"
	headerUnreserved   = "/?:+$"
)

// errNotText is the refusal of bytes that never belong in a URI as written.
var errNotText = errors.New(`must not contain whitespace, control characters, <, >, " or non-ASCII characters (percent-encode them)`)

// ParseSIPURI checks that s is a sip: or sips: URI a carrier can be sent
// to (user, host, port, parameters and headers) and splits it. A URI with
// whitespace, control bytes (raw or percent-encoded) or non-ASCII bytes is
// refused, so nothing from it can break a SIP message into two lines.
//
// The error reads as what is wrong with the URI without naming it ("must
// name a host"), so callers put the name of their field first.
func ParseSIPURI(s string) (SIPURI, error) {
	if s == "" {
		return SIPURI{}, errors.New("must not be empty")
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune(`<>"`, r) }) {
		return SIPURI{}, errNotText
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || !validScheme(scheme) {
		return SIPURI{}, invalidURI("no scheme (want sip: or sips:)")
	}
	u := SIPURI{Scheme: strings.ToLower(scheme)}
	if u.Scheme != "sip" && u.Scheme != "sips" {
		return SIPURI{}, errors.New("must use the sip: or sips: scheme")
	}
	// "@" may appear nowhere but after the user part, which itself may
	// hold ";" and "?": split it off first.
	at := strings.LastIndexByte(rest, '@')
	if at >= 0 {
		u.User, u.Password, _ = strings.Cut(rest[:at], ":")
		rest = rest[at+1:]
	}
	rest, headers, hasHeaders := strings.Cut(rest, "?")
	hostport, params, hasParams := strings.Cut(rest, ";")
	u.Params, u.Headers = params, headers
	if err := u.parseHostPort(hostport); err != nil {
		return SIPURI{}, err
	}
	if at >= 0 && u.User == "" {
		return SIPURI{}, invalidURI("empty user part")
	}
	if err := u.checkParts(hasParams, hasHeaders); err != nil {
		return SIPURI{}, err
	}
	return u, nil
}

func invalidURI(format string, args ...any) error {
	return fmt.Errorf("is not a valid SIP URI: "+format, args...)
}

// validScheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func validScheme(s string) bool {
	return s != "" && isAlpha(s[0]) && allOf(s, func(c byte) bool { return isAlnum(c) || strings.IndexByte("+-.", c) >= 0 })
}

// parseHostPort reads host [":" port].
func (u *SIPURI) parseHostPort(s string) error {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return invalidURI("IPv6 address %q has no closing bracket", s)
		}
		host, port = s[:end+1], s[end+1:]
		if port != "" && port[0] != ':' {
			return invalidURI("%q after the IPv6 address", port)
		}
		port = strings.TrimPrefix(port, ":")
	} else if i := strings.IndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
	}
	if host == "" {
		return errors.New("must name a host")
	}
	if err := checkHost(host); err != nil {
		return err
	}
	u.Host = host
	if len(s) > len(host) {
		n, err := parseURIPort(port)
		if err != nil {
			return err
		}
		u.Port = n
	}
	return nil
}

// checkHost accepts a bracketed IPv6 address, an IPv4 address or a host
// name of letters, digits and inner hyphens (a trailing dot allowed). A
// name that ends in a number must be an IPv4 address.
func checkHost(h string) error {
	if strings.HasPrefix(h, "[") {
		ip, err := netip.ParseAddr(h[1 : len(h)-1])
		switch {
		case err != nil || !ip.Is6() || ip.Zone() != "":
			return invalidURI("%s is not an IPv6 address", h)
		case len(h) > 41: // sipgo looks no further for the bracket
			return invalidURI("%s is longer than 39 characters (write it in hexadecimal)", h)
		}
		return nil
	}
	labels := strings.Split(strings.TrimSuffix(h, "."), ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' || !allOf(l, func(c byte) bool { return isAlnum(c) || c == '-' }) {
			return invalidURI("%q is not a host name or IP address", h)
		}
	}
	if top := labels[len(labels)-1]; allOf(top, isDigit) {
		if ip, err := netip.ParseAddr(h); err != nil || !ip.Is4() {
			return invalidURI("%q is not an IPv4 address", h)
		}
	}
	if len(h) > 253 {
		return invalidURI("the host name is longer than 253 characters")
	}
	return nil
}

func parseURIPort(s string) (int, error) {
	if s == "" || !allOf(s, isDigit) {
		return 0, invalidURI("port %q is not a number", s)
	}
	n := 0
	for i := 0; i < len(s) && n <= 65535; i++ {
		n = n*10 + int(s[i]-'0')
	}
	if n < 1 || n > 65535 {
		return 0, errors.New("has a port out of range")
	}
	return n, nil
}

// checkParts checks the user, password, parameters and headers against
// their character classes, and their escapes.
func (u *SIPURI) checkParts(hasParams, hasHeaders bool) error {
	if err := checkChars("user part", u.User, userUnreserved); err != nil {
		return err
	}
	if err := checkChars("password", u.Password, passwordUnreserved); err != nil {
		return err
	}
	if hasParams {
		for _, p := range strings.Split(u.Params, ";") {
			name, value, hasValue := strings.Cut(p, "=")
			if name == "" || hasValue && value == "" {
				return invalidURI("parameter %q needs a name (and a value after =)", p)
			}
			if err := checkChars("parameter", p, paramUnreserved+"="); err != nil {
				return err
			}
		}
	}
	if hasHeaders {
		for _, h := range strings.Split(u.Headers, "&") {
			name, value, ok := strings.Cut(h, "=")
			if name == "" || !ok {
				return invalidURI("header %q: want name=value", h)
			}
			if err := checkChars("header", name, headerUnreserved); err != nil {
				return err
			}
			if err := checkChars("header", value, headerUnreserved); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkChars accepts letters, digits, marks, the extra characters of the
// part and %HH escapes of anything but control bytes.
func checkChars(part, s, extra string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlnum(c) || strings.IndexByte(markChars, c) >= 0 || strings.IndexByte(extra, c) >= 0:
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return invalidURI("%s %q has a bad %%-escape", part, s)
			}
			if b := unhex(s[i+1])<<4 | unhex(s[i+2]); b < ' ' || b == 0x7f {
				return errors.New("must not contain percent-encoded control characters")
			}
			i += 2
		default:
			return invalidURI("%s %q may not contain %q", part, s, c)
		}
	}
	return nil
}

func allOf(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlnum(c byte) bool { return isAlpha(c) || isDigit(c) }
func isHex(c byte) bool   { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case isDigit(c):
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

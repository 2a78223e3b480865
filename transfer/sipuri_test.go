package transfer

import (
	"strconv"
	"strings"
	"testing"
)

func TestParseSIPURIAccepts(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		want SIPURI
	}{
		// Forms carriers and contact centres send.
		{"sip:+15557654321@ivr.example.com;user=phone;transport=udp",
			SIPURI{Scheme: "sip", User: "+15557654321", Host: "ivr.example.com", Params: "user=phone;transport=udp"}},
		{"sip:+1555@host?User-to-User=00FA1B2C%3Bencoding%3Dhex",
			SIPURI{Scheme: "sip", User: "+1555", Host: "host", Headers: "User-to-User=00FA1B2C%3Bencoding%3Dhex"}},
		{"sips:queue@pbx.example.com:5061;transport=tls",
			SIPURI{Scheme: "sips", User: "queue", Host: "pbx.example.com", Port: 5061, Params: "transport=tls"}},
		{"sip:ivr@192.0.2.1:5060;transport=udp",
			SIPURI{Scheme: "sip", User: "ivr", Host: "192.0.2.1", Port: 5060, Params: "transport=udp"}},
		{"sip:+15551234567;npdi;rn=+15550000000@gw.example.com;user=phone",
			SIPURI{Scheme: "sip", User: "+15551234567;npdi;rn=+15550000000", Host: "gw.example.com", Params: "user=phone"}},
		{"sip:queue@ivr.example.com?X-Foo=bar&Subject=call%20back&X-Empty=",
			SIPURI{Scheme: "sip", User: "queue", Host: "ivr.example.com", Headers: "X-Foo=bar&Subject=call%20back&X-Empty="}},
		{"sip:transfer@sbc.example.com;method=INVITE?Replaces=abc%40host%3Bto-tag%3D1%3Bfrom-tag%3D2",
			SIPURI{Scheme: "sip", User: "transfer", Host: "sbc.example.com", Params: "method=INVITE", Headers: "Replaces=abc%40host%3Bto-tag%3D1%3Bfrom-tag%3D2"}},
		{"sip:1234@10.0.0.1;maddr=10.0.0.2;ttl=5;lr",
			SIPURI{Scheme: "sip", User: "1234", Host: "10.0.0.1", Params: "maddr=10.0.0.2;ttl=5;lr"}},
		{"sip:ret@[2001:db8::1]:5062", SIPURI{Scheme: "sip", User: "ret", Host: "[2001:db8::1]", Port: 5062}},
		{"sip:[::1];transport=tcp", SIPURI{Scheme: "sip", Host: "[::1]", Params: "transport=tcp"}},
		{"sip:pbx.example.com", SIPURI{Scheme: "sip", Host: "pbx.example.com"}},
		{"SIP:Alice@Example.COM.", SIPURI{Scheme: "sip", User: "Alice", Host: "Example.COM."}},
		{"sip:a@b", SIPURI{Scheme: "sip", User: "a", Host: "b"}},
		{"sip:alice:secret@host:65535", SIPURI{Scheme: "sip", User: "alice", Password: "secret", Host: "host", Port: 65535}},
		{"sip:a%20b?c@host", SIPURI{Scheme: "sip", User: "a%20b?c", Host: "host"}},
		{"sip:x@1host.example", SIPURI{Scheme: "sip", User: "x", Host: "1host.example"}},
	} {
		got, err := ParseSIPURI(tc.uri)
		if err != nil {
			t.Errorf("%s: %v", tc.uri, err)
		} else if got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.uri, got, tc.want)
		}
	}
}

func TestParseSIPURIRefuses(t *testing.T) {
	for _, tc := range []struct{ uri, want string }{
		{"", "must not be empty"},
		{"sip:a@b\r\nX-Evil: 1", "control characters"},
		{"sip:a@b\x00", "control characters"},
		{"sip:a@b\tc", "whitespace"},
		{"sip:a b@c", "whitespace"},
		{"sip:\x7f@c", "control characters"},
		{"sip:é@host", "non-ASCII"},
		{"<sip:a@b>", "<, >"},
		{`sip:"a"@b`, `"`},
		{"https://example.com/x", "must use the sip: or sips: scheme"},
		{"tel:+15551234567", "must use the sip: or sips: scheme"},
		{"pbx.example.com", "is not a valid SIP URI"},
		{"1.2.3.4:5060", "is not a valid SIP URI"},
		{"sip:user@", "must name a host"},
		{"sip:", "must name a host"},
		{"sip:;transport=udp", "must name a host"},
		{"sip:user@host:port", "is not a valid SIP URI: port"},
		{"sip:user@host:", "is not a valid SIP URI: port"},
		{"sip:user@host:+5060", "is not a valid SIP URI: port"},
		{"sip:user@host:70000", "has a port out of range"},
		{"sip:user@host:0", "has a port out of range"},
		{"sip:user@host:99999999999999999999999", "has a port out of range"},
		{"sip:@host", "empty user part"},
		{"sip::pw@host", "empty user part"},
		{"sip:a@b@c", "user part"},
		{"sip:a:b:c@host", "password"},
		{"sip:a[1]@host", "user part"},
		{"sip:a@b;", "parameter"},
		{"sip:a@b;;lr", "parameter"},
		{"sip:a@b;=x", "parameter"},
		{"sip:a@b;x=", "parameter"},
		{"sip:host;maddr=[::1]", "parameter"},
		{"sip:a@b?", "header"},
		{"sip:a@b?X", "header"},
		{"sip:a@b?=1", "header"},
		{"sip:a@b?X=1&", "header"},
		{"sip:host?X=[::1]", "header"},
		{"sip:a@b?X=%0D%0AVia:1", "percent-encoded control characters"},
		{"sip:a%00@b", "percent-encoded control characters"},
		{"sip:a@b;x=%7f", "percent-encoded control characters"},
		{"sip:a@b?X=%zz", "bad %-escape"},
		{"sip:a@b?X=%4", "bad %-escape"},
		{"sip:a@b%41", "is not a host name"},
		{"sip:a@[::1", "no closing bracket"},
		{"sip:a@[::1]x", "after the IPv6 address"},
		{"sip:a@[1.2.3.4]", "not an IPv6 address"},
		{"sip:a@[fe80::1%25eth0]", "not an IPv6 address"},
		{"sip:a@[::ffff:255.255.255.255:255.255]", "not an IPv6 address"},
		{"sip:a@[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]", "longer than 39 characters"},
		{"sip:a@1.2.3.999", "not an IPv4 address"},
		{"sip:a@10.0.0", "not an IPv4 address"},
		{"sip:a@-host", "not a host name"},
		{"sip:a@host-.example", "not a host name"},
		{"sip:a@host_name", "not a host name"},
		{"sip:a@example..com", "not a host name"},
		{"sip:*", "not a host name"},
		{"sip:a@" + strings.Repeat("a.", 127) + "com", "longer than 253"},
	} {
		_, err := ParseSIPURI(tc.uri)
		if err == nil {
			t.Errorf("%q accepted", tc.uri)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %q does not mention %q", tc.uri, err, tc.want)
		}
	}
}

// FuzzParseSIPURI: never a panic, and an accepted URI has a sip: or sips:
// scheme, a host, a port in range, parts that are pieces of the input, and
// no control byte, raw or percent-encoded.
func FuzzParseSIPURI(f *testing.F) {
	for _, s := range []string{
		"sip:+15557654321@ivr.example.com;user=phone;transport=udp",
		"sip:+1555@host?User-to-User=00FA1B2C%3Bencoding%3Dhex",
		"sips:a:b@[2001:db8::1]:5061;lr?X=1&Y=",
		"sip:a?b;c@host", "sip:a@b\r\nX: y", "sip:a@b?X=%0a", "sip:[::1", "SIP:h:65536",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseSIPURI(s)
		if err != nil {
			return
		}
		if u.Scheme != "sip" && u.Scheme != "sips" || u.Host == "" || u.Port < 0 || u.Port > 65535 {
			t.Fatalf("%q parsed as %+v", s, u)
		}
		for _, part := range []string{u.User, u.Password, u.Host, u.Params, u.Headers} {
			if !strings.Contains(s, part) {
				t.Fatalf("%q parsed as %+v: %q is not in it", s, u, part)
			}
		}
		for i := 0; i < len(s); i++ {
			if c := s[i]; c <= ' ' || c >= 0x7f {
				t.Fatalf("%q accepted with byte %#x", s, c)
			}
			if s[i] != '%' || i+2 >= len(s) {
				continue
			}
			if b, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil && (b < ' ' || b == 0x7f) {
				t.Fatalf("%q accepted with an escaped control byte %#x", s, b)
			}
		}
	})
}

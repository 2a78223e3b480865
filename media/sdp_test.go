package media

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func sdpBody(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

func offerSDP(c, m string, attrs ...string) []byte {
	lines := []string{"v=0", "o=carrier 123 456 IN IP4 192.0.2.1", "s=-", c, "t=0 0", m}
	return sdpBody(append(lines, attrs...)...)
}

func TestParseSDP(t *testing.T) {
	const c = "c=IN IP4 192.0.2.10"
	tests := []struct {
		name    string
		body    []byte
		want    *Description
		wantErr error
	}{
		{
			name: "PCMU only",
			body: offerSDP(c, "m=audio 4000 RTP/AVP 0"),
			want: &Description{Addr: netip.MustParseAddrPort("192.0.2.10:4000"), Codecs: []Codec{PCMU}, Ptime: 20, Direction: SendRecv},
		},
		{
			name: "PCMA only with rtpmap and ptime",
			body: offerSDP(c, "m=audio 4000 RTP/AVP 8", "a=rtpmap:8 PCMA/8000", "a=ptime:30"),
			want: &Description{Addr: netip.MustParseAddrPort("192.0.2.10:4000"), Codecs: []Codec{PCMA}, Ptime: 30, Direction: SendRecv},
		},
		{
			name: "both, offer order kept, telephone-event 101",
			body: offerSDP(c, "m=audio 4000 RTP/AVP 8 0 101", "a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000",
				"a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=sendrecv"),
			want: &Description{Addr: netip.MustParseAddrPort("192.0.2.10:4000"), Codecs: []Codec{PCMA, PCMU},
				DTMFPayloadType: 101, Ptime: 20, Direction: SendRecv},
		},
		{
			name: "dynamic PCMU and telephone-event 96",
			body: offerSDP(c, "m=audio 4000 RTP/AVP 110 96", "a=rtpmap:110 pcmu/8000", "a=rtpmap:96 telephone-event/8000"),
			want: &Description{Addr: netip.MustParseAddrPort("192.0.2.10:4000"),
				Codecs: []Codec{{Name: "PCMU", PayloadType: 110, ClockRate: 8000}}, DTMFPayloadType: 96, Ptime: 20, Direction: SendRecv},
		},
		{
			name: "G729 only parses with no codecs",
			body: offerSDP(c, "m=audio 4000 RTP/AVP 18", "a=rtpmap:18 G729/8000"),
			want: &Description{Addr: netip.MustParseAddrPort("192.0.2.10:4000"), Ptime: 20, Direction: SendRecv},
		},
		{
			name: "wideband PCMU is not G.711",
			body: offerSDP(c, "m=audio 4000 RTP/AVP 97 0", "a=rtpmap:97 PCMU/16000"),
			want: &Description{Addr: netip.MustParseAddrPort("192.0.2.10:4000"), Codecs: []Codec{PCMU}, Ptime: 20, Direction: SendRecv},
		},
		{
			name: "media-level inactive overrides session sendrecv",
			body: sdpBody("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", c, "t=0 0", "a=sendrecv", "m=audio 4000 RTP/AVP 0", "a=inactive"),
			want: &Description{Addr: netip.MustParseAddrPort("192.0.2.10:4000"), Codecs: []Codec{PCMU}, Ptime: 20, Direction: Inactive},
		},
		{
			name: "session-level sendonly",
			body: sdpBody("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", c, "t=0 0", "a=sendonly", "m=audio 4000 RTP/AVP 0"),
			want: &Description{Addr: netip.MustParseAddrPort("192.0.2.10:4000"), Codecs: []Codec{PCMU}, Ptime: 20, Direction: SendOnly},
		},
		{
			name: "c=0.0.0.0 hold",
			body: offerSDP("c=IN IP4 0.0.0.0", "m=audio 4000 RTP/AVP 0"),
			want: &Description{Addr: netip.MustParseAddrPort("0.0.0.0:4000"), Codecs: []Codec{PCMU}, Ptime: 20, Direction: SendOnly},
		},
		{
			name: "media-level c= wins",
			body: offerSDP(c, "m=audio 4000 RTP/AVP 0", "c=IN IP4 198.51.100.7"),
			want: &Description{Addr: netip.MustParseAddrPort("198.51.100.7:4000"), Codecs: []Codec{PCMU}, Ptime: 20, Direction: SendRecv},
		},
		{
			name: "SAVP is flagged as crypto",
			body: offerSDP(c, "m=audio 4000 RTP/SAVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"),
			want: &Description{Addr: netip.MustParseAddrPort("192.0.2.10:4000"), Codecs: []Codec{PCMU}, Ptime: 20, Direction: SendRecv, Profile: "RTP/SAVP", CryptoLines: 1},
		},
		{
			name: "video first, audio second",
			body: offerSDP(c, "m=video 5000 RTP/AVP 96", "a=rtpmap:96 H264/90000", "m=audio 4002 RTP/AVP 0"),
			want: &Description{Addr: netip.MustParseAddrPort("192.0.2.10:4002"), Codecs: []Codec{PCMU}, Ptime: 20, Direction: SendRecv},
		},
		{name: "garbage", body: []byte("hello world\r\n"), wantErr: ErrInvalidSDP},
		{name: "empty", body: nil, wantErr: ErrInvalidSDP},
		{name: "missing m= line", body: sdpBody("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", c, "t=0 0"), wantErr: ErrNoAudio},
		{name: "video only", body: offerSDP(c, "m=video 5000 RTP/AVP 96"), wantErr: ErrNoAudio},
		{name: "rejected stream", body: offerSDP(c, "m=audio 0 RTP/AVP 0"), wantErr: ErrStreamRejected},
		{name: "no c= line", body: sdpBody("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0", "m=audio 4000 RTP/AVP 0"), wantErr: ErrInvalidSDP},
		{name: "FQDN address", body: offerSDP("c=IN IP4 media.example.com", "m=audio 4000 RTP/AVP 0"), wantErr: ErrUnsupportedSDP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSDP(tt.body)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// o= values are checked separately.
			got.SessionID, got.SessionVersion = 0, 0
			if !descEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func descEqual(a, b *Description) bool {
	if a.Addr != b.Addr || a.DTMFPayloadType != b.DTMFPayloadType || a.Ptime != b.Ptime ||
		a.Direction != b.Direction || a.SRTP() != b.SRTP() || a.CryptoLines != b.CryptoLines || len(a.Codecs) != len(b.Codecs) {
		return false
	}
	for i := range a.Codecs {
		if a.Codecs[i] != b.Codecs[i] {
			return false
		}
	}
	return true
}

func TestNegotiate(t *testing.T) {
	supported := []Codec{PCMU, PCMA}
	tests := []struct {
		name    string
		offer   []byte
		want    Negotiated
		wantErr error
	}{
		{
			name:  "offer order wins",
			offer: offerSDP("c=IN IP4 192.0.2.10", "m=audio 4000 RTP/AVP 8 0 101", "a=rtpmap:101 telephone-event/8000"),
			want: Negotiated{Codec: PCMA, DTMFPayloadType: 101, Ptime: 20,
				Remote: netip.MustParseAddrPort("192.0.2.10:4000"), RemoteDirection: SendRecv, Profile: "RTP/AVP"},
		},
		{
			name:  "dynamic payload type kept",
			offer: offerSDP("c=IN IP4 192.0.2.10", "m=audio 4000 RTP/AVP 18 110 96", "a=rtpmap:110 PCMU/8000", "a=rtpmap:96 telephone-event/8000", "a=sendonly"),
			want: Negotiated{Codec: Codec{Name: "PCMU", PayloadType: 110, ClockRate: 8000}, DTMFPayloadType: 96, Ptime: 20,
				Remote: netip.MustParseAddrPort("192.0.2.10:4000"), RemoteDirection: SendOnly, Profile: "RTP/AVP"},
		},
		{
			name:    "G729 only",
			offer:   offerSDP("c=IN IP4 192.0.2.10", "m=audio 4000 RTP/AVP 18 101", "a=rtpmap:18 G729/8000", "a=rtpmap:101 telephone-event/8000"),
			wantErr: ErrNoCommonCodec,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseSDP(tt.offer)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Negotiate(d, supported)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if _, err := Negotiate(&Description{Codecs: []Codec{PCMA}}, []Codec{PCMU}); !errors.Is(err, ErrNoCommonCodec) {
		t.Fatalf("PCMA vs PCMU: %v", err)
	}
}

func TestLocalSDPAnswerParsesBack(t *testing.T) {
	l := NewLocalSDP(netip.MustParseAddr("127.0.0.1"), 20000, "handoff")
	n := Negotiated{Codec: Codec{Name: "PCMU", PayloadType: 0, ClockRate: 8000}, DTMFPayloadType: 96}
	body := l.Answer(n, RecvOnly)
	d, err := ParseSDP(body)
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	want := &Description{Addr: netip.MustParseAddrPort("127.0.0.1:20000"), Codecs: []Codec{PCMU},
		DTMFPayloadType: 96, Ptime: 20, Direction: RecvOnly}
	if !descEqual(d, want) {
		t.Fatalf("got %+v\n%s", d, body)
	}
	if d.SessionID != l.SessionID() || d.SessionVersion != l.Version() {
		t.Fatalf("o= %d %d, want %d %d", d.SessionID, d.SessionVersion, l.SessionID(), l.Version())
	}
	for _, line := range []string{"a=fmtp:96 0-16", "a=ptime:20", "a=recvonly", "m=audio 20000 RTP/AVP 0 96", "c=IN IP4 127.0.0.1"} {
		if !strings.Contains(string(body), line+"\r\n") {
			t.Errorf("missing %q in\n%s", line, body)
		}
	}
}

func TestLocalSDPOfferParsesBack(t *testing.T) {
	l := NewLocalSDP(netip.MustParseAddr("127.0.0.1"), 20002, "")
	d, err := ParseSDP(l.Offer([]Codec{PCMU, PCMA}, 101, SendRecv))
	if err != nil {
		t.Fatal(err)
	}
	want := &Description{Addr: netip.MustParseAddrPort("127.0.0.1:20002"), Codecs: []Codec{PCMU, PCMA},
		DTMFPayloadType: 101, Ptime: 20, Direction: SendRecv}
	if !descEqual(d, want) {
		t.Fatalf("got %+v", d)
	}
	// Our own offer negotiates against itself.
	n, err := Negotiate(d, []Codec{PCMA, PCMU})
	if err != nil || n.Codec != PCMU || n.DTMFPayloadType != 101 {
		t.Fatalf("negotiate own offer: %+v %v", n, err)
	}
}

func TestLocalSDPVersionBump(t *testing.T) {
	l := NewLocalSDP(netip.MustParseAddr("127.0.0.1"), 20000, "handoff")
	n := Negotiated{Codec: PCMU, DTMFPayloadType: 101}
	version := func(b []byte) uint64 {
		d, err := ParseSDP(b)
		if err != nil {
			t.Fatal(err)
		}
		if d.SessionID != l.SessionID() {
			t.Fatalf("session id changed: %d != %d", d.SessionID, l.SessionID())
		}
		return d.SessionVersion
	}
	v1 := version(l.Answer(n, SendRecv))
	if v2 := version(l.Answer(n, SendRecv)); v2 != v1 {
		t.Fatalf("unchanged answer bumped version %d -> %d", v1, v2)
	}
	v3 := version(l.Answer(n, RecvOnly)) // hold
	if v3 != v1+1 {
		t.Fatalf("hold: version %d, want %d", v3, v1+1)
	}
	if v := version(l.Answer(n, RecvOnly)); v != v3 {
		t.Fatalf("refresh during hold bumped version to %d", v)
	}
	if v := version(l.Answer(n, SendRecv)); v != v3+1 {
		t.Fatalf("resume: version %d, want %d", v, v3+1)
	}
	l.SetPort(20010)
	if v := version(l.Answer(n, SendRecv)); v != v3+2 {
		t.Fatalf("port change: version %d, want %d", v, v3+2)
	}
}

func TestDirectionReverse(t *testing.T) {
	for in, want := range map[Direction]Direction{SendRecv: SendRecv, SendOnly: RecvOnly, RecvOnly: SendOnly, Inactive: Inactive} {
		if got := in.Reverse(); got != want {
			t.Errorf("%s.Reverse() = %s, want %s", in, got, want)
		}
	}
}

// Comfort noise (RFC 3389) is offered, parsed, negotiated and answered as
// CN/8000, static payload type 13 or a dynamic one; ComfortNoise(false)
// leaves it out everywhere.
func TestComfortNoiseNegotiation(t *testing.T) {
	const c = "c=IN IP4 192.0.2.10"
	for _, tc := range []struct {
		name  string
		offer []byte
		cnPT  uint8
	}{
		{"static 13 without rtpmap", offerSDP(c, "m=audio 4000 RTP/AVP 0 101 13", "a=rtpmap:101 telephone-event/8000"), 13},
		{"static 13 with rtpmap", offerSDP(c, "m=audio 4000 RTP/AVP 8 13", "a=rtpmap:13 CN/8000"), 13},
		{"dynamic", offerSDP(c, "m=audio 4000 RTP/AVP 0 98", "a=rtpmap:98 cn/8000"), 98},
		{"wideband CN only", offerSDP(c, "m=audio 4000 RTP/AVP 0 97", "a=rtpmap:97 CN/16000"), 0},
		{"none", offerSDP(c, "m=audio 4000 RTP/AVP 0"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ParseSDP(tc.offer)
			if err != nil {
				t.Fatal(err)
			}
			if d.CNPayloadType != tc.cnPT || len(d.Codecs) != 1 {
				t.Fatalf("parsed CN %d, codecs %v", d.CNPayloadType, d.Codecs)
			}
			n, err := Negotiate(d, []Codec{PCMU, PCMA})
			if err != nil || n.CNPayloadType != tc.cnPT {
				t.Fatalf("negotiated %+v, %v", n, err)
			}
			answer := NewLocalSDP(netip.MustParseAddr("127.0.0.1"), 20000, "handoff").Answer(n, SendRecv)
			back, err := ParseSDP(answer)
			if err != nil || back.CNPayloadType != tc.cnPT {
				t.Fatalf("answer parsed back with CN %d (%v):\n%s", back.CNPayloadType, err, answer)
			}
			if cn := fmt.Sprintf("a=rtpmap:%d CN/8000\r\n", tc.cnPT); (tc.cnPT != 0) != strings.Contains(string(answer), cn) {
				t.Fatalf("answer and %q:\n%s", cn, answer)
			}
			off, err := Negotiate(d, []Codec{PCMU, PCMA}, ComfortNoise(false))
			if err != nil || off.CNPayloadType != 0 {
				t.Fatalf("with comfort noise off: %+v, %v", off, err)
			}
		})
	}

	l := NewLocalSDP(netip.MustParseAddr("127.0.0.1"), 20002, "")
	offer := l.Offer([]Codec{PCMU, PCMA}, 101, SendRecv)
	for _, line := range []string{"m=audio 20002 RTP/AVP 0 8 101 13", "a=rtpmap:13 CN/8000"} {
		if !strings.Contains(string(offer), line+"\r\n") {
			t.Errorf("our offer lacks %q:\n%s", line, offer)
		}
	}
	if d, err := ParseSDP(offer); err != nil || d.CNPayloadType != 13 || len(d.Codecs) != 2 {
		t.Fatalf("our offer parsed back as %+v, %v", d, err)
	}
	plain := l.Offer([]Codec{PCMU, PCMA}, 101, SendRecv, ComfortNoise(false))
	if strings.Contains(string(plain), "CN/8000") || !strings.Contains(string(plain), "m=audio 20002 RTP/AVP 0 8 101\r\n") {
		t.Fatalf("offer with comfort noise off:\n%s", plain)
	}
}

package media

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// sdpSeeds are offers as carriers, SBCs and softphones send them.
var sdpSeeds = []string{
	// Plain PCMU/PCMA with telephone-event (most trunks).
	"v=0\r\no=- 3912 3912 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n" +
		"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
	// Twilio-style offer with dynamic payload types and maxptime.
	"v=0\r\no=root 1455104651 1455104651 IN IP4 54.172.60.1\r\ns=Twilio Media Gateway\r\nc=IN IP4 54.172.60.1\r\nt=0 0\r\n" +
		"m=audio 12188 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=maxptime:150\r\na=sendrecv\r\n",
	// Media-level c=, IPv6, sendonly (hold).
	"v=0\r\no=sbc 1 2 IN IP6 2001:db8::1\r\ns=-\r\nt=0 0\r\nm=audio 30000 RTP/AVP 8\r\nc=IN IP6 2001:db8::2\r\na=sendonly\r\n",
	// RFC 2543 hold.
	"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
	// SRTP offer with a crypto line.
	"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n" +
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n",
	// Video first, then audio; G.729 only; port 0.
	"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\nm=audio 4000 RTP/AVP 18 0\r\na=rtpmap:18 G729/8000\r\n",
	"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n",
	// WebRTC-ish, FQDN connection address, LF line ends.
	"v=0\no=- 1 1 IN IP4 pbx.example.com\ns=-\nc=IN IP4 pbx.example.com\nt=0 0\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0\na=rtpmap:111 opus/48000/2\n",
	"",
	"v=0\r\n",
	// Comfort noise on its static payload type, as Cisco and Polycom phones offer it.
	"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101 13\r\n" +
		"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=rtpmap:13 CN/8000\r\n",
	// baresip's default offer: Opus, G.722, G.711.
	"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 96 9 0 8 101\r\n" +
		"a=rtpmap:96 opus/48000/2\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
}

// FuzzParseSDP: ParseSDP and Negotiate never panic; any negotiation picks a
// supported codec; the answers and offers we generate parse back.
func FuzzParseSDP(f *testing.F) {
	for _, s := range sdpSeeds {
		f.Add([]byte(s))
	}
	f.Add(bytes.Repeat([]byte("m=audio 4000 RTP/AVP 0\r\n"), MaxSDPMedia+1))
	supported := DefaultCodecs
	local := NewLocalSDP(netip.MustParseAddr("127.0.0.1"), 40000, "handoff")
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := ParseSDP(body)
		if err != nil {
			if d != nil {
				t.Fatalf("description with error %v", err)
			}
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			for _, base := range []error{ErrInvalidSDP, ErrNoAudio, ErrStreamRejected, ErrUnsupportedSDP, ErrInvalidCrypto} {
				if errors.Is(err, base) {
					return
				}
			}
			t.Fatalf("error %v wraps no SDP error (sip cannot map it to 488)", err)
		}
		if len(body) > MaxSDPBytes {
			t.Fatalf("accepted a %d-byte body", len(body))
		}
		if !d.Addr.IsValid() || d.Addr.Port() == 0 {
			t.Fatalf("accepted address %v", d.Addr)
		}
		if d.Ptime <= 0 {
			t.Fatalf("ptime %d", d.Ptime)
		}
		for _, c := range d.Codecs {
			if !c.supported() {
				t.Fatalf("unsupported codec %+v in Codecs", c)
			}
		}
		n, err := Negotiate(d, supported)
		if err != nil {
			// The refusals sip answers with 488.
			if !errors.Is(err, ErrNoCommonCodec) && !errors.Is(err, ErrNoCommonCrypto) && !errors.Is(err, ErrInvalidCrypto) {
				t.Fatalf("negotiate: %v", err)
			}
			return
		}
		ok := false
		for _, c := range supported {
			ok = ok || n.Codec.sameFormat(c)
		}
		if !ok || n.Codec.PayloadType > 127 || n.Ptime <= 0 || n.Remote != d.Addr {
			t.Fatalf("negotiated %+v from %+v", n, d)
		}
		switch n.RemoteDirection {
		case SendRecv, SendOnly, RecvOnly, Inactive:
		default:
			t.Fatalf("direction %q", n.RemoteDirection)
		}

		answer := local.Answer(n, n.RemoteDirection.Reverse())
		back, err := ParseSDP(answer)
		if err != nil {
			t.Fatalf("our answer does not parse: %v\n%s", err, answer)
		}
		if len(back.Codecs) != 1 || back.Codecs[0] != n.Codec || back.DTMFPayloadType != n.DTMFPayloadType ||
			back.Direction != n.RemoteDirection.Reverse() {
			t.Fatalf("answer parsed back as %+v, negotiated %+v\n%s", back, n, answer)
		}
		if back.CNPayloadType != n.CNPayloadType {
			t.Fatalf("answer parsed back with CN %d, negotiated %d\n%s", back.CNPayloadType, n.CNPayloadType, answer)
		}
		if strings.ContainsAny(string(answer), "\x00") {
			t.Fatal("NUL in answer")
		}
		offer := local.Offer(supported, n.DTMFPayloadType, n.RemoteDirection)
		if _, err := ParseSDP(offer); err != nil {
			t.Fatalf("our offer does not parse: %v\n%s", err, offer)
		}
	})
}

func TestParseSDPLimits(t *testing.T) {
	head := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
	ok := head + strings.Repeat("m=audio 4000 RTP/AVP 0\r\n", MaxSDPMedia)
	if _, err := ParseSDP([]byte(ok)); err != nil {
		t.Fatalf("%d m= lines refused: %v", MaxSDPMedia, err)
	}
	_, err := ParseSDP([]byte(ok + "m=audio 4002 RTP/AVP 0\r\n"))
	if !errors.Is(err, ErrUnsupportedSDP) || !strings.Contains(err.Error(), "m= lines") {
		t.Fatalf("%d m= lines: err %v", MaxSDPMedia+1, err)
	}
	big := head + "m=audio 4000 RTP/AVP 0\r\n" + strings.Repeat("a=x-pad:"+strings.Repeat("z", 100)+"\r\n", MaxSDPBytes/100)
	_, err = ParseSDP([]byte(big))
	if !errors.Is(err, ErrUnsupportedSDP) || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("%d-byte body: err %v", len(big), err)
	}
}

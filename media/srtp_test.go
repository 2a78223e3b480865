package media

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
)

// testKey is 30 recognisable bytes: key 0x01..0x10, salt 0x11..0x1e.
func testKey() (raw [SRTPKeyLen]byte, b64 string) {
	for i := range raw {
		raw[i] = byte(i + 1)
	}
	return raw, base64.StdEncoding.EncodeToString(raw[:])
}

func TestParseCrypto(t *testing.T) {
	raw, b64 := testKey()
	tests := []struct {
		in      string
		want    SRTPKey
		wantErr bool
	}{
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + b64, want: SRTPKey{Tag: 1, Suite: AESCM128HMACSHA180, Key: raw}},
		{in: "7 AES_CM_128_HMAC_SHA1_32 inline:" + b64 + "|2^31", want: SRTPKey{Tag: 7, Suite: AESCM128HMACSHA132, Key: raw}},
		{in: "2 AES_CM_128_HMAC_SHA1_80 inline:" + b64 + "|2^20|1:4", want: SRTPKey{Tag: 2, Suite: AESCM128HMACSHA180, Key: raw, MKI: 1, MKILen: 4}},
		{in: "3 AES_CM_128_HMAC_SHA1_80 inline:" + b64 + "|5:1 WSH=64", want: SRTPKey{Tag: 3, Suite: AESCM128HMACSHA180, Key: raw, MKI: 5, MKILen: 1}},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + strings.TrimRight(b64, "="), want: SRTPKey{Tag: 1, Suite: AESCM128HMACSHA180, Key: raw}},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + b64 + ";inline:" + b64, want: SRTPKey{Tag: 1, Suite: AESCM128HMACSHA180, Key: raw}},
		{in: "1 AES_256_CM_HMAC_SHA1_80 inline:" + b64, wantErr: true},          // unknown suite
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:!!notbase64!!", wantErr: true},   // bad base64
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + b64[:20], wantErr: true},     // short key
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + b64 + "AAAA", wantErr: true}, // long key
		{in: "1 AES_CM_128_HMAC_SHA1_80 uri:https://kms/" + b64, wantErr: true}, // not inline
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + b64 + " UNENCRYPTED_SRTP", wantErr: true},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + b64 + "|300:1", wantErr: true}, // MKI too big for its length
		{in: "x AES_CM_128_HMAC_SHA1_80 inline:" + b64, wantErr: true},
		{in: "1 AES_CM_128_HMAC_SHA1_80", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseCrypto(tt.in)
		if tt.wantErr {
			if !errors.Is(err, ErrInvalidCrypto) {
				t.Errorf("%q: err = %v, want ErrInvalidCrypto", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: got %+v, %v", tt.in, got, err)
		}
	}
}

func TestCryptoAttributeRoundTrip(t *testing.T) {
	for _, k := range []SRTPKey{
		NewSRTPKey(1, AESCM128HMACSHA180),
		NewSRTPKey(42, AESCM128HMACSHA132),
		{Tag: 9, Suite: AESCM128HMACSHA180, Key: NewSRTPKey(0, "").Key, MKI: 0x0102, MKILen: 2},
	} {
		got, err := ParseCrypto(k.Attribute())
		if err != nil || got != k {
			t.Fatalf("%s: got %v, %v", k.Attribute(), got, err)
		}
	}
	if a, b := NewSRTPKey(1, AESCM128HMACSHA180), NewSRTPKey(1, AESCM128HMACSHA180); a.Key == b.Key {
		t.Fatal("two fresh keys are equal")
	}
}

// The key material must not show in any formatting a log line might use.
func TestSRTPKeyRedacted(t *testing.T) {
	k := NewSRTPKey(1, AESCM128HMACSHA180)
	secret := base64.StdEncoding.EncodeToString(k.Key[:])
	n := Negotiated{Codec: PCMU, RemoteKey: &k, LocalKey: &k}
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	log.Info("x", "key", k, "negotiated", n, "ptr", &k)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "key", k)
	outs := []string{
		fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k), fmt.Sprintf("%v %+v", n, n),
		fmt.Sprintf("%v %+v", &k, &n), logged.String(),
	}
	for _, out := range outs {
		if strings.Contains(out, secret) || strings.Contains(out, secret[:16]) || strings.Contains(out, fmt.Sprint(k.Key[:4])) ||
			strings.Contains(out, fmt.Sprintf("%x", k.Key[:4])) {
			t.Fatalf("key material in %q", out)
		}
		if !strings.Contains(out, "AES_CM_128_HMAC_SHA1_80") {
			t.Fatalf("suite missing from %q", out)
		}
	}
}

func srtpOffer(proto string, crypto ...string) []byte {
	attrs := []string{"a=rtpmap:0 PCMU/8000"}
	for _, c := range crypto {
		attrs = append(attrs, "a=crypto:"+c)
	}
	return offerSDP("c=IN IP4 192.0.2.10", "m=audio 4000 "+proto+" 0", attrs...)
}

func TestNegotiateCrypto(t *testing.T) {
	raw, b64 := testKey()
	tests := []struct {
		name    string
		offer   []byte
		srtp    bool
		want    *SRTPKey
		wantErr error
	}{
		{name: "plain", offer: srtpOffer("RTP/AVP")},
		{name: "SAVP first supported suite", offer: srtpOffer("RTP/SAVP",
			"1 AES_256_CM_HMAC_SHA1_80 inline:"+b64+b64, // unknown suite: skipped
			"2 AES_CM_128_HMAC_SHA1_32 inline:"+b64,
			"3 AES_CM_128_HMAC_SHA1_80 inline:"+b64),
			srtp: true, want: &SRTPKey{Tag: 2, Suite: AESCM128HMACSHA132, Key: raw}},
		{name: "SAVPF", offer: srtpOffer("RTP/SAVPF", "5 AES_CM_128_HMAC_SHA1_80 inline:"+b64),
			srtp: true, want: &SRTPKey{Tag: 5, Suite: AESCM128HMACSHA180, Key: raw}},
		{name: "best-effort SRTP on AVP", offer: srtpOffer("RTP/AVP", "1 AES_CM_128_HMAC_SHA1_80 inline:"+b64),
			srtp: true, want: &SRTPKey{Tag: 1, Suite: AESCM128HMACSHA180, Key: raw}},
		{name: "SAVP without crypto", offer: srtpOffer("RTP/SAVP"), srtp: true, wantErr: ErrNoCommonCrypto},
		{name: "only a short key", offer: srtpOffer("RTP/SAVP", "1 AES_CM_128_HMAC_SHA1_80 inline:AAAA"), srtp: true, wantErr: ErrNoCommonCrypto},
		{name: "only bad base64", offer: srtpOffer("RTP/AVP", "1 AES_CM_128_HMAC_SHA1_80 inline:%%%"), srtp: true, wantErr: ErrNoCommonCrypto},
		{name: "DTLS-SRTP", offer: srtpOffer("UDP/TLS/RTP/SAVP"), srtp: true, wantErr: ErrNoCommonCrypto},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseSDP(tt.offer)
			if err != nil {
				t.Fatal(err)
			}
			if d.SRTP() != tt.srtp {
				t.Fatalf("SRTP() = %v", d.SRTP())
			}
			n, err := Negotiate(d, []Codec{PCMU})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if (n.RemoteKey == nil) != (tt.want == nil) || (tt.want != nil && *n.RemoteKey != *tt.want) || n.SRTP() != (tt.want != nil) {
				t.Fatalf("remote key %v, want %v", n.RemoteKey, tt.want)
			}
		})
	}
}

func TestLocalSDPSRTPAnswer(t *testing.T) {
	_, b64 := testKey()
	for _, proto := range []string{"RTP/SAVP", "RTP/SAVPF", "RTP/AVP"} {
		t.Run(proto, func(t *testing.T) {
			d, err := ParseSDP(srtpOffer(proto, "4 AES_CM_128_HMAC_SHA1_32 inline:"+b64))
			if err != nil {
				t.Fatal(err)
			}
			n, err := Negotiate(d, []Codec{PCMU})
			if err != nil {
				t.Fatal(err)
			}
			l := NewLocalSDP(netip.MustParseAddr("127.0.0.1"), 20000, "handoff")
			body := l.Answer(n, SendRecv)
			a, err := ParseSDP(body)
			if err != nil {
				t.Fatal(err)
			}
			if a.Profile != proto || len(a.Crypto) != 1 || a.CryptoLines != 1 {
				t.Fatalf("answer %s", body)
			}
			ours := a.Crypto[0]
			if ours.Tag != 4 || ours.Suite != AESCM128HMACSHA132 || ours.Key == n.RemoteKey.Key {
				t.Fatalf("our crypto %v", ours)
			}
			if k := l.Key(); k == nil || *k != ours {
				t.Fatalf("Key() = %v, body has %v", k, ours)
			}
			// The same offer again (session refresh): same body, same version.
			v := l.Version()
			if again := l.Answer(n, SendRecv); string(again) != string(body) || l.Version() != v {
				t.Fatalf("refresh changed the answer:\n%s\n%s", body, again)
			}
			// The peer rekeys: so do we.
			k2 := NewSRTPKey(4, AESCM128HMACSHA132)
			n.RemoteKey = &k2
			a2, _ := ParseSDP(l.Answer(n, SendRecv))
			if a2.Crypto[0].Key == ours.Key || l.Version() == v {
				t.Fatal("no new key after the peer's rekey")
			}
			// Falling back to plain RTP drops the crypto line.
			n.RemoteKey = nil
			a3, _ := ParseSDP(l.Answer(n, SendRecv))
			if a3.SRTP() || l.Key() != nil {
				t.Fatalf("plain answer %+v", a3)
			}
		})
	}
}

func TestLocalSDPSRTPOffer(t *testing.T) {
	l := NewLocalSDP(netip.MustParseAddr("127.0.0.1"), 20000, "handoff")
	plain, _ := ParseSDP(l.Offer([]Codec{PCMU, PCMA}, 101, SendRecv))
	if plain.SRTP() || l.Key() != nil {
		t.Fatalf("plain offer %+v", plain)
	}
	body := l.Offer([]Codec{PCMU, PCMA}, 101, SendRecv, OfferSRTP())
	d, err := ParseSDP(body)
	if err != nil {
		t.Fatal(err)
	}
	if d.Profile != "RTP/SAVP" || len(d.Crypto) != 1 || d.Crypto[0].Tag != 1 || d.Crypto[0].Suite != AESCM128HMACSHA180 {
		t.Fatalf("offer %s", body)
	}
	if k := l.Key(); k == nil || *k != d.Crypto[0] {
		t.Fatalf("Key() = %v", k)
	}
	if again, _ := ParseSDP(l.Offer([]Codec{PCMU, PCMA}, 101, SendRecv, OfferSRTP())); again.Crypto[0] != d.Crypto[0] {
		t.Fatal("a repeated offer changed the key")
	}
}

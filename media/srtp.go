package media

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/pion/srtp/v3"
)

// CryptoSuite is an SDES crypto-suite name (RFC 4568 §6.2).
type CryptoSuite string

// The suites we negotiate, in our order of preference. Both use a 128-bit
// AES counter-mode key and a 112-bit salt; they differ in the length of
// the RTP authentication tag (SRTCP always carries 80 bits).
const (
	AESCM128HMACSHA180 CryptoSuite = "AES_CM_128_HMAC_SHA1_80"
	AESCM128HMACSHA132 CryptoSuite = "AES_CM_128_HMAC_SHA1_32"
)

// SRTPKeyLen is the length of an SDES key parameter: master key || salt.
const SRTPKeyLen = 16 + 14

// ErrInvalidCrypto is returned for an a=crypto line we cannot use: an
// unknown suite, a key that is not 30 bytes of base64, or session
// parameters that weaken or change the transform.
var ErrInvalidCrypto = errors.New("media: unusable a=crypto")

// ErrNoCommonCrypto means the peer wants SRTP but offered no a=crypto line
// we can use (or none at all, e.g. DTLS-SRTP).
var ErrNoCommonCrypto = errors.New("media: no usable SRTP crypto suite")

func (c CryptoSuite) profile() (srtp.ProtectionProfile, bool) {
	switch c {
	case AESCM128HMACSHA180:
		return srtp.ProtectionProfileAes128CmHmacSha1_80, true
	case AESCM128HMACSHA132:
		return srtp.ProtectionProfileAes128CmHmacSha1_32, true
	}
	return 0, false
}

// authTagLen is the RTP authentication tag length of the suite.
func (c CryptoSuite) authTagLen() int {
	if c == AESCM128HMACSHA132 {
		return 4
	}
	return 10
}

// SRTPKey is one direction's SDES keying (an a=crypto attribute): the
// sender of a stream protects it with its own key, announced in its SDP.
//
// The key material never leaves the process in text other than the SDP
// body itself: String, GoString and LogValue redact it, so a Negotiated or
// SessionConfig can be logged safely.
type SRTPKey struct {
	Tag   uint32 // a=crypto tag; the answer reuses the offer's
	Suite CryptoSuite
	Key   [SRTPKeyLen]byte // master key (16 bytes) || master salt (14 bytes)
	// MKILen is the length in bytes of the Master Key Identifier carried
	// in every packet (0: none); MKI is its value.
	MKILen uint8
	MKI    uint32
}

// NewSRTPKey returns a fresh random key for suite under tag.
func NewSRTPKey(tag uint32, suite CryptoSuite) SRTPKey {
	k := SRTPKey{Tag: tag, Suite: suite}
	rand.Read(k.Key[:]) // never fails (crypto/rand)
	return k
}

// String describes the key without its material.
func (k SRTPKey) String() string {
	return fmt.Sprintf("%d %s inline:[redacted]", k.Tag, k.Suite)
}

// GoString keeps %#v from printing the key.
func (k SRTPKey) GoString() string { return "media.SRTPKey{" + k.String() + "}" }

// LogValue keeps slog from printing the key.
func (k SRTPKey) LogValue() slog.Value {
	return slog.GroupValue(slog.Any("tag", k.Tag), slog.String("suite", string(k.Suite)))
}

// Attribute is the value of the a=crypto attribute announcing k.
func (k SRTPKey) Attribute() string {
	v := strconv.FormatUint(uint64(k.Tag), 10) + " " + string(k.Suite) + " inline:" + base64.StdEncoding.EncodeToString(k.Key[:])
	if k.MKILen > 0 {
		v += "|" + strconv.FormatUint(uint64(k.MKI), 10) + ":" + strconv.Itoa(int(k.MKILen))
	}
	return v
}

func (k *SRTPKey) mki() []byte {
	if k.MKILen == 0 {
		return nil
	}
	b := make([]byte, k.MKILen)
	v := k.MKI
	for i := int(k.MKILen) - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	return b
}

// ParseCrypto parses the value of an a=crypto attribute (RFC 4568 §9.1):
//
//	<tag> <suite> inline:<base64 key||salt>[|<lifetime>][|<MKI>:<length>][;inline:...] [<session params>]
//
// Only the first key parameter is used. Session parameters that change the
// transform (unencrypted or unauthenticated SRTP, a key derivation rate,
// FEC order) make the line unusable; the window size hint is ignored.
func ParseCrypto(v string) (SRTPKey, error) {
	fields := strings.Fields(v)
	if len(fields) < 3 {
		return SRTPKey{}, fmt.Errorf("%w: too few fields", ErrInvalidCrypto)
	}
	tag, err := strconv.ParseUint(fields[0], 10, 32)
	if err != nil || len(fields[0]) > 9 {
		return SRTPKey{}, fmt.Errorf("%w: tag %q", ErrInvalidCrypto, fields[0])
	}
	k := SRTPKey{Tag: uint32(tag), Suite: CryptoSuite(fields[1])}
	if _, ok := k.Suite.profile(); !ok {
		return SRTPKey{}, fmt.Errorf("%w: suite %q not supported", ErrInvalidCrypto, fields[1])
	}
	for _, p := range fields[3:] {
		if !strings.HasPrefix(p, "WSH=") {
			return SRTPKey{}, fmt.Errorf("%w: session parameter %q not supported", ErrInvalidCrypto, p)
		}
	}
	param, _, _ := strings.Cut(fields[2], ";")
	method, info, ok := strings.Cut(param, ":")
	if !ok || !strings.EqualFold(method, "inline") {
		return SRTPKey{}, fmt.Errorf("%w: key method %q", ErrInvalidCrypto, method)
	}
	parts := strings.Split(info, "|")
	if len(parts) > 3 {
		return SRTPKey{}, fmt.Errorf("%w: key parameter", ErrInvalidCrypto)
	}
	key, err := base64.StdEncoding.DecodeString(parts[0])
	if err != nil {
		// Some endpoints leave out the padding; 30 bytes need none anyway.
		key, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(parts[0], "="))
	}
	if err != nil {
		return SRTPKey{}, fmt.Errorf("%w: key is not base64", ErrInvalidCrypto)
	}
	if len(key) != SRTPKeyLen {
		return SRTPKey{}, fmt.Errorf("%w: key||salt of %d bytes, want %d", ErrInvalidCrypto, len(key), SRTPKeyLen)
	}
	copy(k.Key[:], key)
	for _, p := range parts[1:] {
		if val, length, ok := strings.Cut(p, ":"); ok {
			mki, err1 := strconv.ParseUint(val, 10, 32)
			n, err2 := strconv.ParseUint(length, 10, 8)
			if err1 != nil || err2 != nil || n < 1 || n > 4 || (n < 4 && mki >= 1<<(8*n)) {
				return SRTPKey{}, fmt.Errorf("%w: MKI %q", ErrInvalidCrypto, p)
			}
			k.MKI, k.MKILen = uint32(mki), uint8(n)
			continue
		}
		if !validLifetime(p) {
			return SRTPKey{}, fmt.Errorf("%w: lifetime %q", ErrInvalidCrypto, p)
		}
	}
	return k, nil
}

// validLifetime accepts a decimal count or 2^n packets; we never send that
// many with one key (a call would last years), so the value is not kept.
func validLifetime(s string) bool {
	if e, ok := strings.CutPrefix(s, "2^"); ok {
		s = e
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

// srtpContext creates a pion SRTP context for key k. Receiving contexts
// reject replayed packets (RFC 3711 §3.3.2).
func (k *SRTPKey) context(receive bool) (*srtp.Context, error) {
	profile, ok := k.Suite.profile()
	if !ok {
		return nil, fmt.Errorf("%w: suite %q", ErrInvalidCrypto, k.Suite)
	}
	var opts []srtp.ContextOption
	if receive {
		opts = append(opts, srtp.SRTPReplayProtection(srtpReplayWindow), srtp.SRTCPReplayProtection(srtpReplayWindow))
	}
	if mki := k.mki(); mki != nil {
		opts = append(opts, srtp.MasterKeyIndicator(mki))
	}
	return srtp.CreateContext(k.Key[:16], k.Key[16:], profile, opts...)
}

// srtpReplayWindow is the replay window in packets: several seconds of
// 20 ms audio, far beyond what the jitter buffer would still accept.
const srtpReplayWindow = 256

// srtpOverhead is the most SRTP/SRTCP adds to a packet: the 10-byte tag, a
// 4-byte MKI, and the 4-byte SRTCP index.
const srtpOverhead = 10 + 4 + 4

// srtpKeys is one generation of a session's keys; nil means plain RTP.
type srtpKeys struct {
	local, remote SRTPKey
}

// newSRTPKeys copies a key pair (so the caller's later changes cannot race
// the packet paths): both keys or neither, never SRTP one way only.
func newSRTPKeys(local, remote *SRTPKey) (*srtpKeys, error) {
	switch {
	case local == nil && remote == nil:
		return nil, nil
	case local == nil || remote == nil:
		return nil, errors.New("media: SRTP needs both the local and the remote key")
	}
	for _, k := range []*SRTPKey{local, remote} {
		if _, ok := k.Suite.profile(); !ok {
			return nil, fmt.Errorf("%w: suite %q", ErrInvalidCrypto, k.Suite)
		}
	}
	return &srtpKeys{local: *local, remote: *remote}, nil
}

func (k *srtpKeys) equal(o *srtpKeys) bool {
	if k == nil || o == nil {
		return k == o
	}
	return *k == *o
}

// srtpState is one goroutine's private SRTP context for one direction and
// one protocol. It follows the session's keys: a new generation (re-INVITE)
// rebuilds the context only if this direction's key actually changed, so a
// refresh keeps the rollover counter and replay window.
type srtpState struct {
	gen *srtpKeys // generation last looked at
	key SRTPKey   // key the context was built from
	on  bool      // the stream is SRTP
	ctx *srtp.Context
	err error // the context could not be built: drop everything
}

// sync follows the session's keys; it reports whether the stream is SRTP.
func (st *srtpState) sync(cur *srtpKeys, local, receive bool) bool {
	if st.gen == cur {
		return st.on
	}
	st.gen = cur
	var k *SRTPKey
	if cur != nil {
		k = &cur.remote
		if local {
			k = &cur.local
		}
	}
	switch {
	case k == nil:
		st.on, st.ctx, st.err = false, nil, nil
	case !st.on || *k != st.key:
		st.on, st.key = true, *k
		st.ctx, st.err = k.context(receive)
	}
	return st.on
}

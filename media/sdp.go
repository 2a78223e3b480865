package media

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/pion/sdp/v3"
)

// Direction is an SDP media direction attribute (RFC 3264 §5.1).
type Direction string

const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

// Reverse returns the direction the answerer uses for a given offered
// direction: what one side sends the other receives.
func (d Direction) Reverse() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	case Inactive:
		return Inactive
	default:
		return SendRecv
	}
}

// Sends reports whether a party with this direction sends media.
func (d Direction) Sends() bool { return d == SendRecv || d == SendOnly || d == "" }

// Receives reports whether a party with this direction accepts media.
func (d Direction) Receives() bool { return d == SendRecv || d == RecvOnly || d == "" }

func parseDirection(attrs []sdp.Attribute) (Direction, bool) {
	for _, a := range attrs {
		switch Direction(a.Key) {
		case SendRecv, SendOnly, RecvOnly, Inactive:
			return Direction(a.Key), true
		}
	}
	return "", false
}

// Description is the audio part of a parsed SDP (first audio m= line).
type Description struct {
	// Addr is the connection address (media-level c= over session-level) and
	// the m= port. An unspecified address (0.0.0.0) is an RFC 2543 hold.
	Addr            netip.AddrPort
	Codecs          []Codec // recognised audio codecs, in offer order
	DTMFPayloadType uint8   // telephone-event/8000, 0 if absent
	CNPayloadType   uint8   // comfort noise, CN/8000 (RFC 3389), 0 if absent
	Ptime           int     // ms, 20 if absent
	Direction       Direction
	// Profile is the m= line transport ("RTP/AVP", "RTP/SAVP", ...).
	Profile string
	// Crypto are the usable SDES keys (RFC 4568 a=crypto lines with a
	// supported suite and a well-formed key), in SDP order. CryptoLines
	// counts every a=crypto line, usable or not.
	Crypto      []SRTPKey
	CryptoLines int
	// SessionID and SessionVersion are the o= line values, so a caller can
	// tell a real change from a session refresh (RFC 3264 §8).
	SessionID      uint64
	SessionVersion uint64
}

// SRTP reports whether the peer wants SRTP: a secure profile (RTP/SAVP,
// RTP/SAVPF, or DTLS-SRTP's UDP/TLS/RTP/SAVP) or a=crypto lines, even on
// RTP/AVP ("best-effort" SRTP).
func (d *Description) SRTP() bool {
	return strings.Contains(d.Profile, "SAVP") || d.CryptoLines > 0
}

// SecureProfile reports whether the m= line itself demands SRTP, so the
// stream cannot fall back to plain RTP.
func (d *Description) SecureProfile() bool { return strings.Contains(d.Profile, "SAVP") }

// Hold reports whether the description puts the stream on hold: the peer
// does not want to receive (sendonly, inactive or c=0.0.0.0).
func (d *Description) Hold() bool {
	return !d.Direction.Receives() || d.Addr.Addr().IsUnspecified()
}

// SDP errors. ParseSDP wraps them with detail; test with errors.Is.
var (
	ErrInvalidSDP      = errors.New("media: invalid SDP")
	ErrNoAudio         = errors.New("media: no audio stream in SDP")
	ErrStreamRejected  = errors.New("media: audio stream rejected (port 0)")
	ErrNoCommonCodec   = errors.New("media: no common codec")
	ErrUnsupportedSDP  = errors.New("media: unsupported SDP")
	errNoConnectionSDP = fmt.Errorf("%w: no connection address", ErrInvalidSDP)
)

// Bounds on an SDP body: a real offer is well under a kilobyte with one
// to three m= lines; anything past these is refused before parsing.
const (
	MaxSDPBytes = 64 << 10
	MaxSDPMedia = 16
)

// ParseSDP parses an SDP body and extracts the first audio stream.
func ParseSDP(b []byte) (*Description, error) {
	if err := checkSDPSize(b); err != nil {
		return nil, err
	}
	var s sdp.SessionDescription
	if err := s.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSDP, err)
	}
	m, err := audioMedia(&s)
	if err != nil {
		return nil, err
	}
	ip, err := connectionAddr(&s, m)
	if err != nil {
		return nil, err
	}
	d := &Description{
		Addr:           netip.AddrPortFrom(ip.Unmap(), uint16(m.MediaName.Port.Value)),
		Ptime:          20,
		Direction:      SendRecv,
		Profile:        strings.Join(m.MediaName.Protos, "/"),
		SessionID:      s.Origin.SessionID,
		SessionVersion: s.Origin.SessionVersion,
	}
	d.readFormats(m, d.readAttributes(m))
	if dir, ok := parseDirection(m.Attributes); ok {
		d.Direction = dir
	} else if dir, ok := parseDirection(s.Attributes); ok {
		d.Direction = dir
	}
	if ip.IsUnspecified() {
		// RFC 2543 hold: the peer does not want our media.
		switch d.Direction {
		case SendRecv:
			d.Direction = SendOnly
		case RecvOnly:
			d.Direction = Inactive
		}
	}
	return d, nil
}

// checkSDPSize refuses empty and oversized bodies before parsing.
func checkSDPSize(b []byte) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return fmt.Errorf("%w: empty body", ErrInvalidSDP)
	}
	if len(b) > MaxSDPBytes {
		return fmt.Errorf("%w: body of %d bytes exceeds %d", ErrUnsupportedSDP, len(b), MaxSDPBytes)
	}
	if n := bytes.Count(b, []byte("\nm=")) + bytes.Count(b[:min(2, len(b))], []byte("m=")); n > MaxSDPMedia {
		return fmt.Errorf("%w: %d m= lines exceed %d", ErrUnsupportedSDP, n, MaxSDPMedia)
	}
	return nil
}

// audioMedia is the first audio m= line, if it is a usable RTP stream.
func audioMedia(s *sdp.SessionDescription) (*sdp.MediaDescription, error) {
	var m *sdp.MediaDescription
	for _, md := range s.MediaDescriptions {
		if md.MediaName.Media == "audio" {
			m = md
			break
		}
	}
	if m == nil {
		return nil, ErrNoAudio
	}
	if m.MediaName.Port.Value == 0 {
		return nil, ErrStreamRejected
	}
	if proto := strings.Join(m.MediaName.Protos, "/"); !strings.Contains(proto, "RTP") {
		return nil, fmt.Errorf("%w: transport %q", ErrUnsupportedSDP, proto)
	}
	return m, nil
}

// connectionAddr is the media-level c= address, else the session-level one.
func connectionAddr(s *sdp.SessionDescription, m *sdp.MediaDescription) (netip.Addr, error) {
	conn := m.ConnectionInformation
	if conn == nil || conn.Address == nil {
		conn = s.ConnectionInformation
	}
	if conn == nil || conn.Address == nil {
		return netip.Addr{}, errNoConnectionSDP
	}
	ip, err := netip.ParseAddr(conn.Address.Address)
	if err != nil {
		// FQDNs are legal in c= but nobody we talk to uses them; refuse
		// rather than block on DNS in the signalling path.
		return netip.Addr{}, fmt.Errorf("%w: connection address %q", ErrUnsupportedSDP, conn.Address.Address)
	}
	return ip, nil
}

// readAttributes takes ptime and the a=crypto lines, and returns the
// rtpmap.
func (d *Description) readAttributes(m *sdp.MediaDescription) map[uint8]Codec {
	rtpmap := map[uint8]Codec{}
	for _, a := range m.Attributes {
		switch a.Key {
		case "rtpmap":
			if pt, c, ok := parseRtpmap(a.Value); ok {
				rtpmap[pt] = c
			}
		case "ptime":
			if v, err := strconv.Atoi(strings.TrimSpace(a.Value)); err == nil && v > 0 {
				d.Ptime = v
			}
		case "crypto":
			d.CryptoLines++
			if k, err := ParseCrypto(a.Value); err == nil {
				d.Crypto = append(d.Crypto, k)
			}
		}
	}
	return rtpmap
}

// cnPayloadType is comfort noise's static payload type (RFC 3551 table 4).
const cnPayloadType = 13

// readFormats sorts the m= formats into the audio codecs we speak (G.711,
// G.722), telephone-event and comfort noise (the first of each of the last
// two); others are ignored.
func (d *Description) readFormats(m *sdp.MediaDescription, rtpmap map[uint8]Codec) {
	for _, f := range m.MediaName.Formats {
		n, err := strconv.ParseUint(f, 10, 8)
		if err != nil || n > 127 {
			continue
		}
		pt := uint8(n)
		c, mapped := rtpmap[pt]
		if !mapped {
			c, mapped = staticFormat(pt)
		}
		switch {
		case !mapped:
		case c.supported():
			c.PayloadType = pt
			d.Codecs = append(d.Codecs, c)
		case c.ClockRate != 8000:
		case c.Name == "telephone-event" && d.DTMFPayloadType == 0:
			d.DTMFPayloadType = pt
		case c.Name == "CN" && d.CNPayloadType == 0:
			d.CNPayloadType = pt
		}
	}
}

// staticFormat is what a static payload type means without an rtpmap.
func staticFormat(pt uint8) (Codec, bool) {
	switch pt {
	case PCMU.PayloadType:
		return PCMU, true
	case PCMA.PayloadType:
		return PCMA, true
	case G722.PayloadType:
		return G722, true
	case cnPayloadType:
		return Codec{Name: "CN", PayloadType: cnPayloadType, ClockRate: 8000}, true
	}
	return Codec{}, false
}

// parseRtpmap parses "96 telephone-event/8000[/1]". Names are canonicalised
// for the codecs we know so comparisons elsewhere can be exact.
func parseRtpmap(v string) (uint8, Codec, bool) {
	ptStr, enc, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok {
		return 0, Codec{}, false
	}
	pt, err := strconv.ParseUint(ptStr, 10, 8)
	if err != nil || pt > 127 {
		return 0, Codec{}, false
	}
	parts := strings.Split(strings.TrimSpace(enc), "/")
	if len(parts) < 2 {
		return 0, Codec{}, false
	}
	rate, err := strconv.Atoi(parts[1])
	if err != nil {
		return 0, Codec{}, false
	}
	name := parts[0]
	for _, known := range []string{"PCMU", "PCMA", "G722", "telephone-event", "CN"} {
		if strings.EqualFold(name, known) {
			name = known
		}
	}
	return uint8(pt), Codec{Name: name, PayloadType: uint8(pt), ClockRate: rate}, true
}

// Negotiated is the outcome of an offer/answer exchange for the audio stream.
type Negotiated struct {
	Codec           Codec // with the offer's payload type
	DTMFPayloadType uint8 // 0 when telephone-event was not offered
	// CNPayloadType is the offer's comfort noise payload type (RFC 3389),
	// 0 when CN was not offered or comfort noise is turned off.
	CNPayloadType   uint8
	Ptime           int
	Remote          netip.AddrPort
	RemoteDirection Direction
	// Profile is the remote m= transport; an answer repeats it.
	Profile string
	// RemoteKey is the peer's SRTP key, chosen from its a=crypto lines; nil
	// for plain RTP. LocalKey is ours, as announced in our SDP (see
	// LocalSDP.Key); nil until our SDP carries one. Both print redacted.
	RemoteKey, LocalKey *SRTPKey
}

// SRTP reports whether the stream is protected.
func (n Negotiated) SRTP() bool { return n.RemoteKey != nil }

// Negotiate picks the offered codec our preference list supported ranks
// first (see pickCodec), keeping the offer's payload type numbers, and
// accepts telephone-event if offered, and
// comfort noise if offered unless ComfortNoise(false) is among opts (other
// options concern only offers). An offer that wants SRTP gets its first
// usable a=crypto key as RemoteKey (ErrNoCommonCrypto if there is none);
// whether SRTP is acceptable at all is the caller's policy.
func Negotiate(offer *Description, supported []Codec, opts ...OfferOption) (Negotiated, error) {
	if offer == nil {
		return Negotiated{}, fmt.Errorf("%w: no offer", ErrInvalidSDP)
	}
	codec, ok := pickCodec(offer.Codecs, supported)
	if !ok {
		return Negotiated{}, ErrNoCommonCodec
	}
	n := Negotiated{
		Codec:           codec,
		DTMFPayloadType: offer.DTMFPayloadType,
		Ptime:           offer.Ptime,
		Remote:          offer.Addr,
		RemoteDirection: offer.Direction,
		Profile:         offer.Profile,
	}
	if n.Ptime <= 0 {
		n.Ptime = 20
	}
	if n.RemoteDirection == "" {
		n.RemoteDirection = SendRecv
	}
	if newOfferOptions(opts).comfortNoise {
		n.CNPayloadType = offer.CNPayloadType
	}
	if offer.SRTP() {
		if len(offer.Crypto) == 0 {
			return Negotiated{}, ErrNoCommonCrypto
		}
		k := offer.Crypto[0]
		n.RemoteKey = &k
	}
	return n, nil
}

// pickCodec chooses the codec of an answer (or, for an answer to our
// offer, the one we send): among the offered codecs that supported lists,
// the one of the sample rate the list ranks first, and between codecs of
// that rate the one offered first, as RFC 3264 §6.1 recommends. So the
// default [G722, PCMU, PCMA] takes G.722 whenever it is offered, and a
// caller offering "8 0" keeps PCMA; the list chooses the bandwidth, the
// peer the variant.
func pickCodec(offered, supported []Codec) (Codec, bool) {
	best, bestRank := Codec{}, -1
	for _, oc := range offered {
		if r := rateRank(oc, supported); r >= 0 && (bestRank < 0 || r < bestRank) {
			best, bestRank = oc, r
		}
	}
	return best, bestRank >= 0
}

// rateRank is the position in supported of the first codec with c's sample
// rate, or -1 when supported does not list c.
func rateRank(c Codec, supported []Codec) int {
	rank, listed := -1, false
	for i, sc := range supported {
		listed = listed || c.sameFormat(sc)
		if rank < 0 && sc.SampleRate() == c.SampleRate() {
			rank = i
		}
	}
	if !listed {
		return -1
	}
	return rank
}

// LocalSDP builds our side of the SDP for one dialog. The o= session id is
// fixed for the dialog and the version only moves when the body changes, so
// a session refresh re-INVITE does not look like a modification (RFC 3264 §8).
type LocalSDP struct {
	mu        sync.Mutex
	addr      netip.Addr
	port      int
	username  string
	sessionID uint64
	version   uint64
	last      string // last body generated with the version field blanked
	// key is our SRTP key for this dialog; it survives re-answers so a
	// refresh does not rekey. inBody says whether the last body carried it.
	key       *SRTPKey
	remoteKey SRTPKey // the peer key our key was answered against
	inBody    bool
}

// NewLocalSDP prepares SDP generation for the advertised address and port.
func NewLocalSDP(addr netip.Addr, port int, username string) *LocalSDP {
	if username == "" {
		username = "-"
	}
	// Keep ids below 2^62: some parsers store them as signed 64-bit.
	id := rand.Uint64N(1<<62) + 1
	return &LocalSDP{addr: addr.Unmap(), port: port, username: username, sessionID: id, version: id}
}

// SetPort changes the advertised RTP port (e.g. new ports after a failure).
func (l *LocalSDP) SetPort(port int) {
	l.mu.Lock()
	l.port = port
	l.mu.Unlock()
}

// Version returns the o= version of the last generated body.
func (l *LocalSDP) Version() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.version
}

// SessionID returns the o= session id.
func (l *LocalSDP) SessionID() uint64 { return l.sessionID }

// Answer builds an answer with the single negotiated codec, telephone-event
// and comfort noise if negotiated, ptime 20 and our direction dir. When n is SRTP the answer
// keeps the offer's profile and carries our a=crypto line with the offer's
// tag and suite (RFC 4568 §7.1.2). Our key is fresh for the dialog and
// changes only when the peer changes its key or suite, so answering the
// same offer twice gives the same body.
func (l *LocalSDP) Answer(n Negotiated, dir Direction) []byte {
	codecs := []Codec{n.Codec}
	if n.Codec.Name == "" {
		codecs = nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	proto := "RTP/AVP"
	var key *SRTPKey
	if rk := n.RemoteKey; rk != nil {
		proto = n.Profile
		if proto != "RTP/AVP" && proto != "RTP/SAVPF" {
			proto = "RTP/SAVP"
		}
		if l.key == nil || l.key.Suite != rk.Suite || l.remoteKey != *rk {
			k := NewSRTPKey(rk.Tag, rk.Suite)
			l.key = &k
		} else if l.key.Tag != rk.Tag {
			k := *l.key
			k.Tag = rk.Tag
			l.key = &k
		}
		l.remoteKey = *rk
		key = l.key
	}
	return l.buildLocked(formats{codecs, n.DTMFPayloadType, n.CNPayloadType}, dir, proto, key)
}

// OfferOption changes our side of an offer/answer exchange: what Offer
// proposes, and (ComfortNoise) what Negotiate accepts.
type OfferOption func(*offerOptions)

type offerOptions struct {
	srtp         bool
	comfortNoise bool
}

func newOfferOptions(opts []OfferOption) offerOptions {
	o := offerOptions{comfortNoise: true}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// OfferSRTP makes the offer RTP/SAVP with our a=crypto line
// (AES_CM_128_HMAC_SHA1_80, tag 1 unless the dialog already has a key), so
// the answer must be SRTP too.
func OfferSRTP() OfferOption { return func(o *offerOptions) { o.srtp = true } }

// ComfortNoise turns RFC 3389 comfort noise on or off; it is on by default.
// On, Offer proposes CN/8000 on its static payload type 13, and Negotiate
// accepts the CN of an offer (or of the answer to our offer), which Answer
// then repeats; the session takes CN packets as the caller's silence. Off,
// CN is neither offered nor accepted, and CN packets are dropped as an
// unknown payload type. Pass the same choice to Offer and Negotiate.
func ComfortNoise(on bool) OfferOption { return func(o *offerOptions) { o.comfortNoise = on } }

// Offer builds an offer with the given codecs in preference order,
// telephone-event 0-16 on dtmfPT (0 leaves DTMF out) and comfort noise
// (unless ComfortNoise(false)).
func (l *LocalSDP) Offer(codecs []Codec, dtmfPT uint8, dir Direction, opts ...OfferOption) []byte {
	o := newOfferOptions(opts)
	f := formats{codecs: codecs, dtmfPT: dtmfPT}
	if o.comfortNoise {
		f.cnPT = cnPayloadType
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !o.srtp {
		return l.buildLocked(f, dir, "RTP/AVP", nil)
	}
	// A dialog's key (and tag) carries over into a re-offer, so a re-INVITE
	// without SDP does not rekey; the first offer uses tag 1.
	if l.key == nil || l.key.Suite != AESCM128HMACSHA180 {
		k := NewSRTPKey(1, AESCM128HMACSHA180)
		l.key = &k
	}
	return l.buildLocked(f, dir, "RTP/SAVP", l.key)
}

// Key is the SRTP key announced in the last body we built, nil if that
// body was plain RTP. It is what we protect our stream with.
func (l *LocalSDP) Key() *SRTPKey {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.inBody {
		return nil
	}
	return l.key
}

// formats are the payload formats of a body we build: the audio codecs,
// then telephone-event and comfort noise (0: left out).
type formats struct {
	codecs       []Codec
	dtmfPT, cnPT uint8
}

func (l *LocalSDP) buildLocked(f formats, dir Direction, proto string, key *SRTPKey) []byte {
	if dir == "" {
		dir = SendRecv
	}
	l.inBody = key != nil
	addrType := "IP4"
	if l.addr.Is6() {
		addrType = "IP6"
	}
	s := &sdp.SessionDescription{
		Origin: sdp.Origin{
			Username:       l.username,
			SessionID:      l.sessionID,
			NetworkType:    "IN",
			AddressType:    addrType,
			UnicastAddress: l.addr.String(),
		},
		SessionName: "Handoff",
		ConnectionInformation: &sdp.ConnectionInformation{
			NetworkType: "IN", AddressType: addrType,
			Address: &sdp.Address{Address: l.addr.String()},
		},
		TimeDescriptions:  []sdp.TimeDescription{{Timing: sdp.Timing{}}},
		MediaDescriptions: []*sdp.MediaDescription{audioDescription(l.port, f, dir, proto, key)},
	}

	// Compare with the version blanked so only content changes bump it.
	s.Origin.SessionVersion = 0
	body, _ := s.Marshal()
	if l.last != "" && string(body) != l.last {
		l.version++
	}
	l.last = string(body)
	s.Origin.SessionVersion = l.version
	out, _ := s.Marshal()
	return out
}

// audioDescription is our m=audio section.
func audioDescription(port int, f formats, dir Direction, proto string, key *SRTPKey) *sdp.MediaDescription {
	md := &sdp.MediaDescription{
		MediaName: sdp.MediaName{
			Media:  "audio",
			Port:   sdp.RangedPort{Value: port},
			Protos: strings.Split(proto, "/"),
		},
	}
	format := func(pt uint8, rtpmap string, fmtp ...string) {
		p := strconv.Itoa(int(pt))
		md.MediaName.Formats = append(md.MediaName.Formats, p)
		md.Attributes = append(md.Attributes, sdp.NewAttribute("rtpmap", p+" "+rtpmap))
		for _, v := range fmtp {
			md.Attributes = append(md.Attributes, sdp.NewAttribute("fmtp", p+" "+v))
		}
	}
	for _, c := range f.codecs {
		format(c.PayloadType, fmt.Sprintf("%s/%d", c.Name, c.ClockRate))
	}
	if f.dtmfPT != 0 {
		format(f.dtmfPT, "telephone-event/8000", "0-16")
	}
	if f.cnPT != 0 {
		format(f.cnPT, "CN/8000")
	}
	if key != nil {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("crypto", key.Attribute()))
	}
	md.Attributes = append(md.Attributes,
		sdp.NewAttribute("ptime", "20"),
		sdp.NewPropertyAttribute(string(dir)))
	return md
}

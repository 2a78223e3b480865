package media

import (
	"fmt"
	"strings"
)

// Codec identifies an audio payload format as negotiated in SDP. PayloadType
// is the number used on the wire, which for dynamic mappings comes from the
// offer rather than from the static table.
type Codec struct {
	Name        string
	PayloadType uint8
	ClockRate   int
}

// The static audio codecs Handoff speaks (RFC 3551 table 4). G.722
// samples at 16 kHz but its RTP clock is 8000 (RFC 3551 §4.5.2): a 20 ms
// packet is 320 samples in 160 octets, and its timestamp advances 160.
var (
	PCMU = Codec{Name: "PCMU", PayloadType: 0, ClockRate: 8000}
	PCMA = Codec{Name: "PCMA", PayloadType: 8, ClockRate: 8000}
	G722 = Codec{Name: "G722", PayloadType: 9, ClockRate: 8000}
)

// DefaultCodecs is the default preference list: G.722 when the peer
// offers it, else G.711 as the peer orders it (see Negotiate).
var DefaultCodecs = []Codec{G722, PCMU, PCMA}

// Frames are 20 ms whatever the rate: the unit of pacing, of OnAudio and
// of Source. FrameSamples is one at 8 kHz (G.711), WideFrameSamples one at
// 16 kHz (G.722).
const (
	FrameSamples     = 160
	WideFrameSamples = 320
)

// FrameLen is the number of samples in one 20 ms frame at rate (8000 or
// 16000).
func FrameLen(rate int) int { return rate / 50 }

// FrameRate is the sample rate of a 20 ms frame of n samples: a frame is
// 8 kHz up to FrameSamples samples and 16 kHz above (a short frame is
// padded with silence). Frames say their rate by their length, so one
// Source can mix, say, the agent's 16 kHz audio and an 8 kHz ringback.
func FrameRate(n int) int {
	if n > FrameSamples {
		return 16000
	}
	return 8000
}

// SampleRate is the rate of the codec's audio, which for G.722 is not its
// RTP clock rate.
func (c Codec) SampleRate() int {
	if c.isG722() {
		return 16000
	}
	return c.ClockRate
}

// ParseCodec reads a codec name as configured (PCMU, PCMA or G722, any
// case) into its static codec.
func ParseCodec(name string) (Codec, error) {
	for _, c := range []Codec{PCMU, PCMA, G722} {
		if strings.EqualFold(name, c.Name) {
			return c, nil
		}
	}
	return Codec{}, fmt.Errorf("codec %q: want G722, PCMU or PCMA", name)
}

// ParseCodecs reads a preference list of codec names: not empty, no
// unknown name, none twice.
func ParseCodecs(names []string) ([]Codec, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("no codec: want a list of G722, PCMU and PCMA")
	}
	out := make([]Codec, 0, len(names))
	for _, n := range names {
		c, err := ParseCodec(n)
		if err != nil {
			return nil, err
		}
		for _, have := range out {
			if have == c {
				return nil, fmt.Errorf("codec %s listed twice", c.Name)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// sameFormat reports whether two codecs describe the same encoding,
// regardless of payload type number.
func (c Codec) sameFormat(o Codec) bool {
	return strings.EqualFold(c.Name, o.Name) && c.ClockRate == o.ClockRate
}

func (c Codec) isALaw() bool { return strings.EqualFold(c.Name, "PCMA") }

func (c Codec) isG711() bool {
	return c.ClockRate == 8000 && (strings.EqualFold(c.Name, "PCMU") || strings.EqualFold(c.Name, "PCMA"))
}

func (c Codec) isG722() bool { return c.ClockRate == 8000 && strings.EqualFold(c.Name, "G722") }

// supported reports whether a session can carry the codec.
func (c Codec) supported() bool { return c.isG711() || c.isG722() }

// The tables are built once from the ITU-T G.711 reference algorithms (as in
// the classic Sun g711.c): decoding is a 256-entry lookup and encoding a lookup
// on the 14-bit (µ-law) or 13-bit (A-law) magnitude G.711 actually uses.
var (
	ulawDecode [256]int16
	alawDecode [256]int16
	ulawEncode [1 << 14]byte
	alawEncode [1 << 13]byte
)

func init() {
	for i := range 256 {
		ulawDecode[i] = ulaw2linear(byte(i))
		alawDecode[i] = alaw2linear(byte(i))
	}
	for i := range ulawEncode {
		ulawEncode[i] = linear2ulaw(int16(uint16(i) << 2))
	}
	for i := range alawEncode {
		alawEncode[i] = linear2alaw(int16(uint16(i) << 3))
	}
}

// DecodeULaw decodes min(len(dst), len(src)) µ-law bytes into 16-bit PCM.
func DecodeULaw(dst []int16, src []byte) {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, b := range src {
		dst[i] = ulawDecode[b]
	}
}

// EncodeULaw encodes min(len(dst), len(src)) PCM samples as µ-law.
func EncodeULaw(dst []byte, src []int16) {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, s := range src {
		dst[i] = ulawEncode[uint16(s)>>2]
	}
}

// DecodeALaw decodes min(len(dst), len(src)) A-law bytes into 16-bit PCM.
func DecodeALaw(dst []int16, src []byte) {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, b := range src {
		dst[i] = alawDecode[b]
	}
}

// EncodeALaw encodes min(len(dst), len(src)) PCM samples as A-law.
func EncodeALaw(dst []byte, src []int16) {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, s := range src {
		dst[i] = alawEncode[uint16(s)>>3]
	}
}

// audioFormat is how the packet paths encode and decode a codec's
// payload; a buffered packet keeps its format, so a codec change by
// re-INVITE does not misdecode what was already received.
type audioFormat uint8

const (
	formatULaw audioFormat = iota
	formatALaw
	formatG722
)

func (c Codec) format() audioFormat {
	switch {
	case c.isALaw():
		return formatALaw
	case c.isG722():
		return formatG722
	}
	return formatULaw
}

// rate is the sample rate of the format's audio.
func (f audioFormat) rate() int {
	if f == formatG722 {
		return 16000
	}
	return 8000
}

// encodeG711 and decodeG711 dispatch on a G.711 format; G.722 is
// stateful and has its own encoder and decoder per session.
func encodeG711(f audioFormat, dst []byte, src []int16) {
	if f == formatALaw {
		EncodeALaw(dst, src)
	} else {
		EncodeULaw(dst, src)
	}
}

func decodeG711(f audioFormat, dst []int16, src []byte) {
	if f == formatALaw {
		DecodeALaw(dst, src)
	} else {
		DecodeULaw(dst, src)
	}
}

const (
	ulawBias = 0x84
	ulawClip = 8159
)

var segEndU = [8]int{0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF}
var segEndA = [8]int{0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF}

func segment(v int, table *[8]int) int {
	for i, end := range table {
		if v <= end {
			return i
		}
	}
	return 8
}

func linear2ulaw(pcm int16) byte {
	v := int(pcm) >> 2
	mask := byte(0xFF)
	if v < 0 {
		v = -v
		mask = 0x7F
	}
	if v > ulawClip {
		v = ulawClip
	}
	v += ulawBias >> 2
	seg := segment(v, &segEndU)
	if seg >= 8 {
		return 0x7F ^ mask
	}
	return byte(seg<<4|(v>>(seg+1))&0x0F) ^ mask
}

func ulaw2linear(u byte) int16 {
	u = ^u
	t := (int(u&0x0F) << 3) + ulawBias
	t <<= (u & 0x70) >> 4
	if u&0x80 != 0 {
		return int16(ulawBias - t)
	}
	return int16(t - ulawBias)
}

func linear2alaw(pcm int16) byte {
	v := int(pcm) >> 3
	mask := byte(0xD5)
	if v < 0 {
		mask = 0x55
		v = -v - 1
	}
	seg := segment(v, &segEndA)
	if seg >= 8 {
		return 0x7F ^ mask
	}
	a := seg << 4
	if seg < 2 {
		a |= (v >> 1) & 0x0F
	} else {
		a |= (v >> seg) & 0x0F
	}
	return byte(a) ^ mask
}

func alaw2linear(a byte) int16 {
	a ^= 0x55
	t := int(a&0x0F) << 4
	seg := int(a&0x70) >> 4
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}

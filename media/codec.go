package media

import "strings"

// Codec identifies an audio payload format as negotiated in SDP. PayloadType
// is the number used on the wire, which for dynamic mappings comes from the
// offer rather than from the static table.
type Codec struct {
	Name        string
	PayloadType uint8
	ClockRate   int
}

// Static G.711 codecs (RFC 3551 table 4).
var (
	PCMU = Codec{Name: "PCMU", PayloadType: 0, ClockRate: 8000}
	PCMA = Codec{Name: "PCMA", PayloadType: 8, ClockRate: 8000}
)

// FrameSamples is one 20 ms frame at 8 kHz, the unit of pacing and of OnAudio.
const FrameSamples = 160

// sameFormat reports whether two codecs describe the same encoding,
// regardless of payload type number.
func (c Codec) sameFormat(o Codec) bool {
	return strings.EqualFold(c.Name, o.Name) && c.ClockRate == o.ClockRate
}

func (c Codec) isALaw() bool { return strings.EqualFold(c.Name, "PCMA") }

func (c Codec) isG711() bool {
	return c.ClockRate == 8000 && (strings.EqualFold(c.Name, "PCMU") || strings.EqualFold(c.Name, "PCMA"))
}

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
)

func (c Codec) format() audioFormat {
	if c.isALaw() {
		return formatALaw
	}
	return formatULaw
}

// encodeFrame and decodeFrame dispatch on the format.
func encodeFrame(f audioFormat, dst []byte, src []int16) {
	if f == formatALaw {
		EncodeALaw(dst, src)
	} else {
		EncodeULaw(dst, src)
	}
}

func decodeFrame(f audioFormat, dst []int16, src []byte) {
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

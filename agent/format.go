package agent

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/handoff/handoff/media"
)

// Format is the audio encoding spoken on the agent link, both ways.
type Format struct {
	// Encoding is the mediaFormat.encoding announced in the start message:
	// "audio/x-mulaw" or "audio/l16".
	Encoding string
	// SampleRate is 8000, or 16000 for audio/l16.
	SampleRate int
}

// Formats the WebSocket link speaks.
var (
	// FormatMulaw is G.711 µ-law at 8 kHz, the Twilio Media Streams format
	// and the default.
	FormatMulaw = Format{Encoding: "audio/x-mulaw", SampleRate: 8000}
	// FormatL16 is 16-bit signed little-endian linear PCM at 8 kHz.
	FormatL16 = Format{Encoding: "audio/l16", SampleRate: 8000}
	// FormatL16Wide is 16-bit signed little-endian linear PCM at 16 kHz.
	FormatL16Wide = Format{Encoding: "audio/l16", SampleRate: 16000}
)

// ParseFormat reads the configuration spelling of a format: "mulaw" (or
// empty), "l16-8000" or "l16-16000".
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "mulaw", "ulaw", "pcmu":
		return FormatMulaw, nil
	case "l16-8000", "l16":
		return FormatL16, nil
	case "l16-16000":
		return FormatL16Wide, nil
	}
	return Format{}, fmt.Errorf("agent format %q: want mulaw, l16-8000 or l16-16000", s)
}

// String is the configuration spelling.
func (f Format) String() string {
	switch f {
	case FormatMulaw, Format{}:
		return "mulaw"
	case FormatL16:
		return "l16-8000"
	case FormatL16Wide:
		return "l16-16000"
	}
	return fmt.Sprintf("%s/%d", f.Encoding, f.SampleRate)
}

func (f Format) valid() bool {
	return f == FormatMulaw || f == FormatL16 || f == FormatL16Wide
}

func (f Format) isMulaw() bool { return f.Encoding == FormatMulaw.Encoding }

// frameSamples is the number of samples in one 20 ms frame of the format.
func (f Format) frameSamples() int { return media.FrameLen(f.SampleRate) }

// frameBytes is the size of one 20 ms frame on the wire.
func (f Format) frameBytes() int {
	if f.isMulaw() {
		return f.frameSamples()
	}
	return 2 * f.frameSamples()
}

// encoder turns one track's frames, at whatever rate the call's codec
// delivers them (8 kHz G.711, 16 kHz G.722), into wire payloads; it keeps
// the resampler's state, so each track has its own. A frame already at the
// format's rate is not resampled: a G.722 call reaches an l16-16000 agent
// as it was decoded.
type encoder struct {
	f  Format
	rs media.Resampler
}

// encode appends the wire form of one frame to dst.
func (e *encoder) encode(dst []byte, pcm []int16) []byte {
	pcm = e.rs.Frame(pcm, e.f.SampleRate)
	if e.f.isMulaw() {
		n := len(dst)
		dst = append(dst, make([]byte, len(pcm))...)
		media.EncodeULaw(dst[n:], pcm)
		return dst
	}
	return appendL16(dst, pcm)
}

func appendL16(dst []byte, pcm []int16) []byte {
	for _, s := range pcm {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(s))
	}
	return dst
}

// decoder turns wire payloads from the agent into samples at the format's
// rate; the media session's pacer resamples them, once, if the call's
// codec runs at the other rate.
type decoder struct {
	f Format
}

// decode appends the samples of payload to dst. An L16 payload of odd
// length is malformed.
func (d *decoder) decode(dst []int16, payload []byte) ([]int16, error) {
	if d.f.isMulaw() {
		n := len(dst)
		dst = append(dst, make([]int16, len(payload))...)
		media.DecodeULaw(dst[n:], payload)
		return dst, nil
	}
	if len(payload)%2 != 0 {
		return dst, fmt.Errorf("audio/l16 payload of %d bytes is not whole samples", len(payload))
	}
	for i := 0; i < len(payload); i += 2 {
		dst = append(dst, int16(binary.LittleEndian.Uint16(payload[i:])))
	}
	return dst, nil
}

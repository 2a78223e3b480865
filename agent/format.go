package agent

import (
	"encoding/binary"
	"fmt"
	"math"
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

// frameBytes is the size of one 20 ms frame on the wire.
func (f Format) frameBytes() int {
	if f.isMulaw() {
		return FrameSamples
	}
	return 2 * FrameSamples * f.SampleRate / 8000
}

// encoder turns 8 kHz frames into wire payloads for one track; it keeps
// the upsampler's state, so each track has its own.
type encoder struct {
	f    Format
	up   upsampler
	wide [2 * FrameSamples]int16
}

// encode appends the wire form of one 8 kHz frame to dst.
func (e *encoder) encode(dst []byte, pcm []int16) []byte {
	switch {
	case e.f.isMulaw():
		n := len(dst)
		dst = append(dst, make([]byte, len(pcm))...)
		media.EncodeULaw(dst[n:], pcm)
		return dst
	case e.f.SampleRate == 16000:
		wide := e.up.process(e.wide[:0], pcm)
		return appendL16(dst, wide)
	default:
		return appendL16(dst, pcm)
	}
}

func appendL16(dst []byte, pcm []int16) []byte {
	for _, s := range pcm {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(s))
	}
	return dst
}

// decoder turns wire payloads from the agent into 8 kHz samples; it keeps
// the downsampler's state.
type decoder struct {
	f    Format
	down downsampler
	raw  []int16
}

// decode appends the 8 kHz samples of payload to dst. An L16 payload of
// odd length is malformed.
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
	if d.f.SampleRate == 8000 {
		for i := 0; i < len(payload); i += 2 {
			dst = append(dst, int16(binary.LittleEndian.Uint16(payload[i:])))
		}
		return dst, nil
	}
	d.raw = d.raw[:0]
	for i := 0; i < len(payload); i += 2 {
		d.raw = append(d.raw, int16(binary.LittleEndian.Uint16(payload[i:])))
	}
	return d.down.process(dst, d.raw), nil
}

// The resamplers share one anti-aliasing / anti-imaging filter: a 47-tap
// Kaiser-windowed sinc (beta 5) cut at 4 kHz for a 16 kHz stream, normalised
// to unity gain at DC. It is flat within half a dB up to 3.4 kHz (the
// telephone band) and about 50 dB down from 4.6 kHz, so what would fold
// back into the band after decimation, or the images interpolation leaves
// above 4 kHz, is inaudible. Its delay is 23 samples at 16 kHz (1.4 ms).
const firTaps = 47

var firCoef = func() [firTaps]float32 {
	const (
		fc   = 4000.0 / 16000
		beta = 5.0
	)
	var h [firTaps]float64
	var sum float64
	m := float64(firTaps-1) / 2
	for n := range firTaps {
		x := float64(n) - m
		sinc := 2 * fc
		if x != 0 {
			sinc = math.Sin(2*math.Pi*fc*x) / (math.Pi * x)
		}
		r := x / m
		h[n] = sinc * besselI0(beta*math.Sqrt(1-r*r)) / besselI0(beta)
		sum += h[n]
	}
	var out [firTaps]float32
	for n := range h {
		out[n] = float32(h[n] / sum)
	}
	return out
}()

// besselI0 is the modified Bessel function of the first kind, order 0.
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / (2 * float64(k))) * (x / (2 * float64(k)))
		sum += term
		if term < 1e-12*sum {
			break
		}
	}
	return sum
}

// fir runs firCoef over a stream, one sample in at a time.
type fir struct {
	// hist holds the last firTaps inputs twice over, so the newest firTaps
	// are always contiguous at hist[pos:pos+firTaps].
	hist [2 * firTaps]float32
	pos  int
}

func (f *fir) push(v float32) {
	f.hist[f.pos] = v
	f.hist[f.pos+firTaps] = v
	f.pos++
	if f.pos == firTaps {
		f.pos = 0
	}
}

func (f *fir) out() float32 {
	win := f.hist[f.pos : f.pos+firTaps]
	var acc float32
	for k, c := range firCoef {
		acc += c * win[k]
	}
	return acc
}

// upsampler doubles the sample rate (8 kHz to 16 kHz): a zero between
// every two samples, then the low-pass filter (gain 2) removes the image
// above 4 kHz. Its state carries across calls, so frames join seamlessly.
type upsampler struct{ f fir }

func (u *upsampler) process(dst, src []int16) []int16 {
	for _, s := range src {
		u.f.push(2 * float32(s))
		dst = append(dst, clamp16(u.f.out()))
		u.f.push(0)
		dst = append(dst, clamp16(u.f.out()))
	}
	return dst
}

// downsampler halves the sample rate (16 kHz to 8 kHz): the low-pass
// filter, then every second sample. Its state carries across calls.
type downsampler struct {
	f     fir
	phase int
}

func (d *downsampler) process(dst, src []int16) []int16 {
	for _, s := range src {
		d.f.push(float32(s))
		d.phase ^= 1
		if d.phase == 0 {
			dst = append(dst, clamp16(d.f.out()))
		}
	}
	return dst
}

func clamp16(v float32) int16 {
	switch {
	case v >= math.MaxInt16:
		return math.MaxInt16
	case v <= math.MinInt16:
		return math.MinInt16
	}
	return int16(math.Round(float64(v)))
}

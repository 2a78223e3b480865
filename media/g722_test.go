package media

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/handoff/handoff/internal/testenv"
)

const (
	g722Rate          = 16000
	g722PacketSamples = 320 // 20 ms at 16 kHz
	g722PacketBytes   = 160
)

// The golden vectors, made by ffmpeg (see testdata/g722/README.md).
var (
	g722GoldenSignal  = filepath.Join("testdata", "g722", "signal.s16le")
	g722GoldenEncoded = filepath.Join("testdata", "g722", "signal-ffmpeg.g722")
	g722GoldenDecoded = filepath.Join("testdata", "g722", "signal-ffmpeg-decoded.s16le")
)

func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// s16le converts between little-endian 16-bit PCM bytes and samples.
func s16leSamples(b []byte) []int16 {
	pcm := make([]int16, len(b)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return pcm
}

func s16leBytes(pcm []int16) []byte {
	b := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}

// g722Encode and g722Decode run a fresh codec over a whole stream.
func g722Encode(pcm []int16) []byte {
	var e G722Encoder
	return e.Encode(nil, pcm)
}

func g722Decode(payload []byte) []int16 {
	var d G722Decoder
	return d.Decode(nil, payload)
}

// snrDB is the signal-to-noise ratio of got against ref, in dB (+Inf when
// they are equal), over their common length.
func snrDB(ref, got []int16) float64 {
	var sig, noise float64
	for i := range min(len(ref), len(got)) {
		r, e := float64(ref[i]), float64(got[i])-float64(ref[i])
		sig += r * r
		noise += e * e
	}
	return 10 * math.Log10(sig/noise)
}

func maxAbsDiff(a, b []int16) int {
	m := 0
	for i := range min(len(a), len(b)) {
		m = max(m, int(math.Abs(float64(a[i])-float64(b[i]))))
	}
	return m
}

// g722Delay is the codec's delay in samples, that of the transmit and
// receive QMFs together (measured; ffmpeg declares the same for its encoder).
const g722Delay = 22

// codecSNR compares a decoded signal with the original it was encoded
// from, compensating the codec's delay.
func codecSNR(orig, decoded []int16) float64 {
	return snrDB(orig, decoded[g722Delay:])
}

// g722TestSignal is a deterministic test signal at 16 kHz: 1 kHz and 6 kHz
// tones, both together, a 50 Hz-7.5 kHz sweep, speech-like noise (low-pass
// noise under a 5 Hz syllabic envelope), and silence; 0.25 s each.
func g722TestSignal() []int16 {
	const seg = g722Rate / 4
	rng := rand.New(rand.NewPCG(722, 13))
	var pcm []int16
	tone := func(freqs ...float64) {
		for i := range seg {
			var v float64
			for _, f := range freqs {
				v += 8000 * math.Sin(2*math.Pi*f*float64(i)/g722Rate)
			}
			pcm = append(pcm, int16(v))
		}
	}
	tone(1000)
	tone(6000)
	tone(1000, 6000)
	for i := range seg {
		t := float64(i) / g722Rate
		phase := 2 * math.Pi * (50*t + (7500-50)/(2*0.25)*t*t)
		pcm = append(pcm, int16(10000*math.Sin(phase)))
	}
	var lp float64
	for i := range seg {
		lp = 0.8*lp + 0.2*rng.NormFloat64()*12000
		env := 0.5 - 0.5*math.Cos(2*math.Pi*5*float64(i)/g722Rate)
		pcm = append(pcm, int16(max(-32768, min(32767, lp*env*2))))
	}
	return append(pcm, make([]int16, seg)...)
}

// TestG722GoldenDecode decodes ffmpeg's encoding of the golden signal and
// expects exactly ffmpeg's decoding of it: both follow the Recommendation's
// bit-exact decoder, and this runs without ffmpeg installed.
func TestG722GoldenDecode(t *testing.T) {
	enc := readFile(t, g722GoldenEncoded)
	want := s16leSamples(readFile(t, g722GoldenDecoded))
	got := g722Decode(enc)
	if len(got) != 2*len(enc) || !slices.Equal(got, want) {
		t.Fatalf("decoded %d samples, %d wanted; max diff %d, SNR %.1f dB",
			len(got), len(want), maxAbsDiff(want, got), snrDB(want, got))
	}
	// Packet by packet through one decoder: the same stream.
	var d G722Decoder
	var packets []int16
	for p := range slices.Chunk(enc, g722PacketBytes) {
		packets = d.Decode(packets, p)
	}
	if !slices.Equal(packets, want) {
		t.Fatal("decoding 20 ms packets in turn differs from decoding the stream")
	}
}

// TestG722GoldenEncode encodes the golden signal and expects exactly
// ffmpeg's bytes. ffmpeg's default (non-trellis) encoder computes the same
// blocks; it differs from the Recommendation's reference only when a
// sub-band sample overflows 15 bits (near-full-scale input, see
// TestG722EncoderMatchesFFmpeg), which this signal (peak -8 dBFS) never does.
func TestG722GoldenEncode(t *testing.T) {
	pcm := s16leSamples(readFile(t, g722GoldenSignal))
	want := readFile(t, g722GoldenEncoded)
	got := g722Encode(pcm)
	if !bytes.Equal(got, want) {
		t.Fatalf("%.2f%% of %d octets equal ffmpeg's", percentEqual(got, want), len(want))
	}
}

func percentEqual(a, b []byte) float64 {
	same := 0
	for i := range min(len(a), len(b)) {
		if a[i] == b[i] {
			same++
		}
	}
	return 100 * float64(same) / float64(max(len(a), len(b)))
}

// TestG722RoundTripQuality encodes and decodes each part of the test signal
// and checks the quality G.722 at 64 kbit/s is known for.
func TestG722RoundTripQuality(t *testing.T) {
	pcm := g722TestSignal()
	out := g722Decode(g722Encode(pcm))
	if len(out) != len(pcm) {
		t.Fatalf("%d samples out of %d", len(out), len(pcm))
	}
	const seg = g722Rate / 4
	for i, c := range []struct {
		name   string
		minSNR float64
	}{{"1 kHz", 40}, {"6 kHz", 20}, {"1+6 kHz", 25}, {"sweep", 15}, {"speech-like noise", 15}} {
		// Skip the first 20 ms of each part: the ADPCM adapts to a new signal.
		from, to := i*seg+320, (i+1)*seg-g722Delay
		snr := snrDB(pcm[from:to], out[from+g722Delay:to+g722Delay])
		t.Logf("%s: SNR %.1f dB", c.name, snr)
		if snr < c.minSNR {
			t.Errorf("%s: SNR %.1f dB, want at least %.0f", c.name, snr, c.minSNR)
		}
	}
	silence := out[5*seg+320:]
	if m := maxAbsDiff(silence, make([]int16, len(silence))); m > 4 {
		t.Errorf("silence decodes with peaks of %d", m)
	}
}

// TestG722WidebandTone is what G.722 is for: a 6 kHz tone, which no 8 kHz
// codec can carry, comes out at the level it went in, measured against a
// 1 kHz control tone of the same amplitude.
func TestG722WidebandTone(t *testing.T) {
	const seg = g722Rate / 4
	mix := g722TestSignal()[2*seg : 3*seg] // 1 kHz + 6 kHz, 8000 each
	out := g722Decode(g722Encode(mix))[g722PacketSamples:]
	at6k := testenv.Goertzel(out, g722Rate, 6000)
	at1k := testenv.Goertzel(out, g722Rate, 1000)
	floor := testenv.Goertzel(out, g722Rate, 3500)
	t.Logf("6 kHz %.0f, 1 kHz %.0f, 3.5 kHz %.1f (6 kHz vs 1 kHz %.2f dB)", at6k, at1k, floor, testenv.DB(at6k, at1k))
	if d := testenv.DB(at6k, at1k); math.Abs(d) > 1 {
		t.Errorf("6 kHz comes out %.2f dB from the 1 kHz control, want within 1 dB", d)
	}
	if d := testenv.DB(at1k, 8000); math.Abs(d) > 1 {
		t.Errorf("1 kHz control at %.2f dB of its input level", d)
	}
	if d := testenv.DB(at6k, floor); d < 40 {
		t.Errorf("6 kHz only %.1f dB above the 3.5 kHz noise floor", d)
	}
}

// TestG722StreamCutAnywhere: the encoder and decoder are stateful streams,
// so cutting the input into arbitrary pieces, odd lengths included, gives
// the same bytes and samples as one call.
func TestG722StreamCutAnywhere(t *testing.T) {
	pcm := g722TestSignal()
	want := g722Encode(pcm)
	rng := rand.New(rand.NewPCG(1, 2))
	var e G722Encoder
	var got []byte
	inPieces(rng, pcm, 700, func(p []int16) { got = e.Encode(got, p) })
	if !bytes.Equal(got, want) {
		t.Fatalf("piecewise encoding differs (%.2f%% equal)", percentEqual(got, want))
	}
	wantPCM := g722Decode(want)
	var d G722Decoder
	var gotPCM []int16
	inPieces(rng, want, 300, func(p []byte) { gotPCM = d.Decode(gotPCM, p) })
	if !slices.Equal(gotPCM, wantPCM) {
		t.Fatal("piecewise decoding differs")
	}
}

// inPieces calls fn on consecutive pieces of s, each of a random length
// below maxLen (empty pieces included).
func inPieces[T any](rng *rand.Rand, s []T, maxLen int, fn func([]T)) {
	for len(s) > 0 {
		n := min(len(s), rng.IntN(maxLen))
		fn(s[:n])
		s = s[n:]
	}
}

// TestG722Reset: after Reset a used codec behaves like a new one, also with
// an odd sample pending in the encoder.
func TestG722Reset(t *testing.T) {
	pcm := g722TestSignal()
	var e G722Encoder
	e.Encode(nil, pcm[:1001])
	e.Reset()
	if got := e.Encode(nil, pcm); !bytes.Equal(got, g722Encode(pcm)) {
		t.Fatal("encoder after Reset differs from a new one")
	}
	enc := g722Encode(pcm)
	var d G722Decoder
	d.Decode(nil, enc[:777])
	d.Reset()
	if got := d.Decode(nil, enc); !slices.Equal(got, g722Decode(enc)) {
		t.Fatal("decoder after Reset differs from a new one")
	}
}

// g722OverloadSignal is input at and beyond full scale: a 500 Hz square
// wave, then low-pass noise clipped hard, 0.25 s each.
func g722OverloadSignal() []int16 {
	const seg = g722Rate / 4
	rng := rand.New(rand.NewPCG(7, 22))
	pcm := make([]int16, 2*seg)
	var lp float64
	for i := range seg {
		pcm[i] = 32767
		if i/16%2 == 1 {
			pcm[i] = -32768
		}
		lp = 0.8*lp + 0.2*rng.NormFloat64()*100000
		pcm[seg+i] = int16(max(-32768, min(32767, lp)))
	}
	return pcm
}

// TestG722Overload: full-scale input stays bounded and recognisable: no
// wrap-around, the reference's saturation and 15-bit limits hold.
func TestG722Overload(t *testing.T) {
	pcm := g722OverloadSignal()
	out := g722Decode(g722Encode(pcm))
	snr := codecSNR(pcm, out)
	t.Logf("full-scale input: SNR %.1f dB", snr)
	if snr < 10 {
		t.Fatalf("full-scale input: SNR %.1f dB", snr)
	}
}

// TestG722NoAllocs: a 20 ms packet encodes and decodes without allocating
// once the destination has room, like the G.711 path.
func TestG722NoAllocs(t *testing.T) {
	pcm := g722TestSignal()[:g722PacketSamples]
	payload := make([]byte, 0, g722PacketBytes)
	out := make([]int16, 0, g722PacketSamples)
	var e G722Encoder
	var d G722Decoder
	if n := testing.AllocsPerRun(100, func() {
		payload = e.Encode(payload[:0], pcm)
		out = d.Decode(out[:0], payload)
	}); n != 0 {
		t.Fatalf("allocs per packet = %v", n)
	}
	if len(payload) != g722PacketBytes || len(out) != g722PacketSamples {
		t.Fatalf("packet of %d octets, %d samples", len(payload), len(out))
	}
}

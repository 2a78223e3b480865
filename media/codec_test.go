package media

import (
	"math"
	"testing"
)

func TestG711KnownVectors(t *testing.T) {
	tests := []struct {
		name   string
		decode func([]int16, []byte)
		b      byte
		pcm    int16
	}{
		{"ulaw 0xFF is +0", DecodeULaw, 0xFF, 0},
		{"ulaw 0x7F is -0", DecodeULaw, 0x7F, 0},
		{"ulaw 0x80 is max", DecodeULaw, 0x80, 32124},
		{"ulaw 0x00 is min", DecodeULaw, 0x00, -32124},
		{"ulaw 0xFE", DecodeULaw, 0xFE, 8},
		{"alaw 0xD5 is +8", DecodeALaw, 0xD5, 8},
		{"alaw 0x55 is -8", DecodeALaw, 0x55, -8},
		{"alaw 0xAA is max", DecodeALaw, 0xAA, 32256},
		{"alaw 0x2A is min", DecodeALaw, 0x2A, -32256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := make([]int16, 1)
			tt.decode(out, []byte{tt.b})
			if out[0] != tt.pcm {
				t.Fatalf("decode(%#x) = %d, want %d", tt.b, out[0], tt.pcm)
			}
		})
	}

	enc := []struct {
		name   string
		encode func([]byte, []int16)
		pcm    int16
		b      byte
	}{
		{"ulaw 0", EncodeULaw, 0, 0xFF},
		{"ulaw max", EncodeULaw, math.MaxInt16, 0x80},
		{"ulaw min", EncodeULaw, math.MinInt16, 0x00},
		{"alaw 0", EncodeALaw, 0, 0xD5},
		{"alaw 8", EncodeALaw, 8, 0xD5},
		{"alaw max", EncodeALaw, math.MaxInt16, 0xAA},
		{"alaw min", EncodeALaw, math.MinInt16, 0x2A},
	}
	for _, tt := range enc {
		t.Run(tt.name, func(t *testing.T) {
			out := make([]byte, 1)
			tt.encode(out, []int16{tt.pcm})
			if out[0] != tt.b {
				t.Fatalf("encode(%d) = %#x, want %#x", tt.pcm, out[0], tt.b)
			}
		})
	}
}

// Every code word must survive decode→encode unchanged (except µ-law's
// negative zero, which encodes back to positive zero).
func TestG711CodeWordRoundTrip(t *testing.T) {
	pcm := make([]int16, 256)
	out := make([]byte, 256)
	in := make([]byte, 256)
	for i := range in {
		in[i] = byte(i)
	}
	DecodeULaw(pcm, in)
	EncodeULaw(out, pcm)
	for i := range in {
		if out[i] != in[i] && !(in[i] == 0x7F && out[i] == 0xFF) {
			t.Errorf("ulaw %#x -> %d -> %#x", in[i], pcm[i], out[i])
		}
	}
	DecodeALaw(pcm, in)
	EncodeALaw(out, pcm)
	for i := range in {
		if out[i] != in[i] {
			t.Errorf("alaw %#x -> %d -> %#x", in[i], pcm[i], out[i])
		}
	}
}

// Encoding then decoding any sample stays within G.711's quantisation step
// for its segment, and keeps the sign.
func TestG711SampleRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name string
		enc  func([]byte, []int16)
		dec  func([]int16, []byte)
	}{{"ulaw", EncodeULaw, DecodeULaw}, {"alaw", EncodeALaw, DecodeALaw}} {
		b := make([]byte, 1)
		o := make([]int16, 1)
		for s := math.MinInt16; s <= math.MaxInt16; s += 7 {
			c.enc(b, []int16{int16(s)})
			c.dec(o, b)
			diff := math.Abs(float64(int(o[0]) - s))
			tol := math.Max(math.Abs(float64(s))/16, 16) // ~4 bits of mantissa
			if diff > tol {
				t.Fatalf("%s: %d -> %#x -> %d (diff %v)", c.name, s, b[0], o[0], diff)
			}
			if s > 64 && o[0] <= 0 || s < -64 && o[0] >= 0 {
				t.Fatalf("%s: sign lost %d -> %d", c.name, s, o[0])
			}
		}
	}
}

func TestG711NoAllocs(t *testing.T) {
	pcm := make([]int16, FrameSamples)
	b := make([]byte, FrameSamples)
	if n := testing.AllocsPerRun(100, func() {
		EncodeULaw(b, pcm)
		DecodeULaw(pcm, b)
		EncodeALaw(b, pcm)
		DecodeALaw(pcm, b)
	}); n != 0 {
		t.Fatalf("allocs = %v", n)
	}
}

func BenchmarkULawEncode(b *testing.B) {
	pcm := make([]int16, FrameSamples)
	for i := range pcm {
		pcm[i] = int16(i * 97)
	}
	out := make([]byte, FrameSamples)
	b.SetBytes(FrameSamples * 2)
	b.ReportAllocs()
	for b.Loop() {
		EncodeULaw(out, pcm)
	}
}

func BenchmarkULawDecode(b *testing.B) {
	in := make([]byte, FrameSamples)
	for i := range in {
		in[i] = byte(i)
	}
	out := make([]int16, FrameSamples)
	b.SetBytes(FrameSamples)
	b.ReportAllocs()
	for b.Loop() {
		DecodeULaw(out, in)
	}
}

func BenchmarkALawEncode(b *testing.B) {
	pcm := make([]int16, FrameSamples)
	out := make([]byte, FrameSamples)
	b.ReportAllocs()
	for b.Loop() {
		EncodeALaw(out, pcm)
	}
}

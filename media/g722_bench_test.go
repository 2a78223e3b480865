package media

import "testing"

// One op is one 20 ms packet (320 samples <-> 160 octets), through one
// stateful codec as a call uses it; compare with BenchmarkULawEncode and
// BenchmarkULawDecode (160 samples <-> 160 octets).

func BenchmarkG722Encode(b *testing.B) {
	pcm := g722TestSignal()[:g722PacketSamples]
	out := make([]byte, 0, g722PacketBytes)
	var e G722Encoder
	b.SetBytes(g722PacketSamples * 2)
	b.ReportAllocs()
	for b.Loop() {
		out = e.Encode(out[:0], pcm)
	}
}

func BenchmarkG722Decode(b *testing.B) {
	in := g722Encode(g722TestSignal()[:g722PacketSamples])
	out := make([]int16, 0, g722PacketSamples)
	var d G722Decoder
	b.SetBytes(g722PacketBytes)
	b.ReportAllocs()
	for b.Loop() {
		out = d.Decode(out[:0], in)
	}
}

// The stream benchmarks run the codec over a continuous stream, the test
// signal (1.5 s of tones, a sweep, speech-like noise and silence) packet by
// packet, starting over from a reset at its end: the decoder's state always
// matches its input, as in a call (BenchmarkG722Decode decodes one packet
// over and over with a state that no longer matches it, which drives the
// predictor into saturation). One op is still one 20 ms packet.

func BenchmarkG722EncodeStream(b *testing.B) {
	out := make([]byte, 0, g722PacketBytes)
	var e G722Encoder
	b.SetBytes(g722PacketSamples * 2)
	inPackets(b, g722TestSignal(), g722PacketSamples, e.Reset, func(p []int16) { out = e.Encode(out[:0], p) })
}

func BenchmarkG722DecodeStream(b *testing.B) {
	out := make([]int16, 0, g722PacketSamples)
	var d G722Decoder
	b.SetBytes(g722PacketBytes)
	inPackets(b, g722Encode(g722TestSignal()), g722PacketBytes, d.Reset, func(p []byte) { out = d.Decode(out[:0], p) })
}

// inPackets runs code on consecutive packets of size elements of s, one per
// op, and calls reset at the end of s before it starts over.
func inPackets[T any](b *testing.B, s []T, size int, reset func(), code func([]T)) {
	b.ReportAllocs()
	s = s[:len(s)/size*size]
	i := 0
	for b.Loop() {
		code(s[i : i+size])
		if i += size; i == len(s) {
			i = 0
			reset()
		}
	}
}

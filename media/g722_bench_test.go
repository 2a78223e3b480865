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
	pcm := g722TestSignal()
	pcm = pcm[:len(pcm)/g722PacketSamples*g722PacketSamples]
	out := make([]byte, 0, g722PacketBytes)
	var e G722Encoder
	b.SetBytes(g722PacketSamples * 2)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		out = e.Encode(out[:0], pcm[i:i+g722PacketSamples])
		if i += g722PacketSamples; i == len(pcm) {
			i = 0
			e.Reset()
		}
	}
}

func BenchmarkG722DecodeStream(b *testing.B) {
	in := g722Encode(g722TestSignal())
	in = in[:len(in)/g722PacketBytes*g722PacketBytes]
	out := make([]int16, 0, g722PacketSamples)
	var d G722Decoder
	b.SetBytes(g722PacketBytes)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		out = d.Decode(out[:0], in[i:i+g722PacketBytes])
		if i += g722PacketBytes; i == len(in) {
			i = 0
			d.Reset()
		}
	}
}

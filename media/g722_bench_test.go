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

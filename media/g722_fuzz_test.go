package media

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzG722Decode: any octets decode, never panic, give exactly two samples
// per octet, and decode the same whether split into two calls or not.
func FuzzG722Decode(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x00, 0xff, 0x3f, 0xc0})
	f.Add(g722Encode(g722TestSignal()[:g722PacketSamples]))
	f.Add(g722Encode(g722OverloadSignal()[:g722PacketSamples]))
	f.Fuzz(func(t *testing.T, payload []byte) {
		var d G722Decoder
		out := d.Decode(nil, payload)
		if len(out) != 2*len(payload) {
			t.Fatalf("%d octets decoded to %d samples", len(payload), len(out))
		}
		var split G722Decoder
		half := len(payload) / 2
		two := split.Decode(split.Decode(nil, payload[:half]), payload[half:])
		if !slices.Equal(out, two) {
			t.Fatal("decoding in two calls differs from one")
		}
	})
}

// FuzzG722MatchesReference: any input, read as 16-bit samples to encode and
// as octets to decode, codes exactly as the plain pieces do
// (g722_reference_test.go).
func FuzzG722MatchesReference(f *testing.F) {
	f.Add([]byte{0xff, 0x7f, 0x00, 0x80, 0x01, 0x00})
	f.Add(s16leBytes(g722FullScaleSignal()[:g722PacketSamples]))
	f.Add(g722RandomOctets()[4000:4400])
	f.Fuzz(func(t *testing.T, in []byte) {
		pcm := s16leSamples(in)
		if got, want := g722Encode(pcm), refEncode(pcm); !bytes.Equal(got, want) {
			t.Fatalf("encoding differs from octet %d", firstDiff(got, want))
		}
		if got, want := g722Decode(in), refDecode(in); !slices.Equal(got, want) {
			t.Fatalf("decoding differs: max abs diff %d", maxAbsDiff(got, want))
		}
	})
}

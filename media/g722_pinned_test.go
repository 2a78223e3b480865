package media

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The pinned vectors hold this package's own output where no independent
// implementation is bit-exact with the Recommendation's reference: encoding
// at and beyond full scale (ffmpeg parts there, see g722_ffmpeg_test.go),
// and decoding codes no encoder emits with ffmpeg possibly absent. They
// were made by the straightforward implementation, before the codec was
// optimised, so every saturation path keeps its exact arithmetic (see
// testdata/g722/README.md).
var (
	g722PinnedEncoded = filepath.Join("testdata", "g722", "fullscale-handoff.g722")
	g722PinnedDecoded = filepath.Join("testdata", "g722", "random-handoff-decoded.s16le")

	updateG722Pins = flag.Bool("update-g722-pins", false, "rewrite the pinned G.722 vectors from the current codec")
)

// pinRand is a 64-bit LCG (Knuth's MMIX constants): integer-only, so the
// pinned inputs are the same on every platform and Go release.
type pinRand uint64

func (r *pinRand) next() uint32 {
	*r = *r*6364136223846793005 + 1442695040888963407
	return uint32(*r >> 32)
}

// g722FullScaleSignal is 0.6 s of input that drives the encoder's
// saturations (the difference signal EL, UPPOL2, FILTEP, PREDIC) and the
// QMF's 15-bit LIMIT: square waves at full scale with half-periods of 3,
// 16 and 100 samples, full-scale impulses, uniform full-scale noise and
// random full-scale extremes, 0.1 s each.
func g722FullScaleSignal() []int16 {
	const seg = g722Rate / 10
	r := pinRand(722)
	square := func(i, half int) int16 {
		if i/half%2 == 0 {
			return 32767
		}
		return -32768
	}
	parts := []func(i int) int16{
		func(i int) int16 { return square(i, 3) },
		func(i int) int16 { return square(i, 16) },
		func(i int) int16 { return square(i, 100) },
		func(int) int16 {
			switch r.next() % 40 {
			case 0:
				return 32767
			case 1:
				return -32768
			}
			return 0
		},
		func(int) int16 { return int16(r.next()) },
		func(int) int16 { return square(int(r.next()>>31), 1) },
	}
	var pcm []int16
	for _, f := range parts {
		for i := range seg {
			pcm = append(pcm, f(i))
		}
	}
	return pcm
}

// g722RandomOctets is 0.5 s of uniformly random octets, IL 0-3 included,
// then 0.5 s of random octets in runs of 100 whose lower sub-band sign bit
// is set, then clear: sustained differences of one sign, which drive the
// decoder's predictor into every saturation (FILTEZ's included).
func g722RandomOctets() []byte {
	r := pinRand(9)
	b := make([]byte, 8000)
	for i := range b {
		b[i] = byte(r.next() >> 24)
		if i >= 4000 && i/100%2 == 0 {
			b[i] |= 0x20
		} else if i >= 4000 {
			b[i] &^= 0x20
		}
	}
	return b
}

// TestG722Pinned: the encoder turns the full-scale signal, and the decoder
// the random octets, into exactly the pinned vectors.
func TestG722Pinned(t *testing.T) {
	enc := g722Encode(g722FullScaleSignal())
	dec := s16leBytes(g722Decode(g722RandomOctets()))
	if *updateG722Pins {
		for path, b := range map[string][]byte{g722PinnedEncoded: enc, g722PinnedDecoded: dec} {
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if want := readFile(t, g722PinnedEncoded); !bytes.Equal(enc, want) {
		t.Errorf("full-scale encoding: %.2f%% of %d octets equal the pin, first difference at %d",
			percentEqual(enc, want), len(want), firstDiff(enc, want))
	}
	want := s16leSamples(readFile(t, g722PinnedDecoded))
	if got := s16leSamples(dec); !slices.Equal(got, want) {
		t.Errorf("random octets decode: max abs diff %d from the pin", maxAbsDiff(got, want))
	}
}

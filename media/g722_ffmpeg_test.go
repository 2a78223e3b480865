package media

// Cross-checks against Debian's ffmpeg (libavcodec's g722 encoder and
// decoder), an implementation nobody here wrote. Without ffmpeg on PATH the
// tests skip, unless CI is set, when they fail: CI must install ffmpeg.
//
// What to expect, and what was measured (ffmpeg 5.1, the signals below):
//   - Decoding is bit-exact by the Recommendation, and libavcodec's decoder
//     is: every sample equals ours, for any octet stream.
//   - Encoding from the reset state: identical octets for any input whose
//     transmit QMF output fits in 15 bits, which is everything short of
//     full scale (the test signal, peaks at -2.4 dBFS: 100% equal). At and beyond
//     full scale they part: the ITU-T reference (G.191 STL qmf_tx) applies
//     LIMIT to XL and XH, and so do we; libavcodec does not, and only clips
//     the difference signal EL/EH to 16 bits (g722enc.c filter_samples and
//     encode_low). Once one sub-band sample differs the adaptive states
//     differ and so do the octets after it, but both streams decode about
//     equally well. libavcodec's optional trellis search (-trellis N) would
//     make its octets differ everywhere; the default (0) is off.

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/handoff/handoff/internal/testenv"
)

// needFFmpeg returns ffmpeg's path, or skips the test (fails it under CI).
func needFFmpeg(t *testing.T) string {
	t.Helper()
	return testenv.Tool(t, "ffmpeg", "apt-get install -y ffmpeg")
}

// ffmpegRun converts the file contents in through ffmpeg: inFormat are the
// options that describe the input, outFormat those of the output.
func ffmpegRun(t *testing.T, in []byte, inFormat, outFormat []string) []byte {
	t.Helper()
	bin := needFFmpeg(t)
	dir := t.TempDir()
	inPath, outPath := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	if err := os.WriteFile(inPath, in, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y"}
	args = append(append(args, inFormat...), "-i", inPath)
	args = append(append(args, outFormat...), outPath)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
	return readFile(t, outPath)
}

var (
	ffmpegPCM  = []string{"-f", "s16le", "-ar", "16000", "-ac", "1"}
	ffmpegG722 = []string{"-f", "g722"}
)

func ffmpegEncode(t *testing.T, pcm []int16) []byte {
	return ffmpegRun(t, s16leBytes(pcm), ffmpegPCM, append([]string{"-c:a", "g722"}, ffmpegG722...))
}

func ffmpegDecode(t *testing.T, payload []byte) []int16 {
	return s16leSamples(ffmpegRun(t, payload, ffmpegG722, ffmpegPCM))
}

// g722Signals are the cross-check inputs: the test signal and full-scale
// input (where the encoders part, see above).
var g722Signals = []struct {
	name string
	pcm  func() []int16
}{{"test signal", g722TestSignal}, {"full scale", g722OverloadSignal}}

// TestG722FFmpegEncodedDecodesAlike: ffmpeg encodes; our decoder and
// ffmpeg's must agree, and do so exactly. Random octets too: they hold the
// codes no encoder emits (IL 0-3), which the decoder must still map as the
// Recommendation says.
func TestG722FFmpegEncodedDecodesAlike(t *testing.T) {
	random := make([]byte, 8000)
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	type stream struct {
		name string
		enc  []byte
	}
	streams := []stream{{"random octets", random}}
	for _, sig := range g722Signals {
		streams = append(streams, stream{sig.name + " (ffmpeg-encoded)", ffmpegEncode(t, sig.pcm())})
	}
	for _, st := range streams {
		ours, theirs := g722Decode(st.enc), ffmpegDecode(t, st.enc)
		t.Logf("%s: %d octets; decoded max abs diff %d, SNR ours vs ffmpeg %.1f dB",
			st.name, len(st.enc), maxAbsDiff(ours, theirs), snrDB(theirs, ours))
		if !slices.Equal(ours, theirs) {
			t.Errorf("%s: decoders differ: %d vs %d samples, max abs diff %d",
				st.name, len(ours), len(theirs), maxAbsDiff(ours, theirs))
		}
	}
}

// TestG722FFmpegDecodesOurs: we encode, ffmpeg decodes. Compared with the
// original the codec's own quality must show; compared with ffmpeg's own
// encode-decode chain the result is identical below full scale.
func TestG722FFmpegDecodesOurs(t *testing.T) {
	pcm := g722TestSignal()
	decoded := ffmpegDecode(t, g722Encode(pcm))
	chain := ffmpegDecode(t, ffmpegEncode(t, pcm))
	snr := codecSNR(pcm, decoded)
	t.Logf("vs original: SNR %.1f dB (ffmpeg's chain %.1f dB); vs ffmpeg's chain: max abs diff %d",
		snr, codecSNR(pcm, chain), maxAbsDiff(decoded, chain))
	if snr < 18 {
		t.Errorf("ffmpeg decodes our encoding at SNR %.1f dB against the original, want 18 or more", snr)
	}
	if !slices.Equal(decoded, chain) {
		t.Errorf("ffmpeg's decoding of our octets differs from its own chain: max abs diff %d", maxAbsDiff(decoded, chain))
	}
}

// TestG722EncoderMatchesFFmpeg: from a reset state both spec-conformant
// encoders produce the same octets below full scale; at full scale the first
// difference comes no earlier than the first sub-band sample the reference's
// 15-bit LIMIT changes, and both encodings still decode comparably.
func TestG722EncoderMatchesFFmpeg(t *testing.T) {
	for _, sig := range g722Signals {
		pcm := sig.pcm()
		ours, theirs := g722Encode(pcm), ffmpegEncode(t, pcm)
		first := firstDiff(ours, theirs)
		limited := firstLimitedPair(pcm)
		decOurs, decTheirs := g722Decode(ours), g722Decode(theirs)
		snrOurs, snrTheirs := codecSNR(pcm, decOurs), codecSNR(pcm, decTheirs)
		t.Logf("%s: %.2f%% of %d octets equal (first difference at %d, first 15-bit limit at %d); "+
			"decoded: SNR vs original ours %.1f dB, ffmpeg's %.1f dB; ours vs ffmpeg's SNR %.1f dB, max abs diff %d",
			sig.name, percentEqual(ours, theirs), len(ours), first, limited, snrOurs, snrTheirs,
			snrDB(decTheirs, decOurs), maxAbsDiff(decOurs, decTheirs))
		switch {
		case len(ours) != len(theirs):
			t.Errorf("%s: %d octets, ffmpeg %d", sig.name, len(ours), len(theirs))
		case limited < 0 && first >= 0:
			t.Errorf("%s: octet %d differs with no sub-band sample limited", sig.name, first)
		case first >= 0 && first < limited:
			t.Errorf("%s: octet %d differs before the first limited sub-band sample (%d)", sig.name, first, limited)
		case snrOurs < snrTheirs-1:
			t.Errorf("%s: our encoding decodes %.1f dB worse than ffmpeg's", sig.name, snrTheirs-snrOurs)
		}
	}
}

// firstDiff returns the index of the first octet where a and b differ, -1
// if none does over their common length.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// firstLimitedPair returns the index of the first sample pair whose transmit
// QMF output XL or XH overflows 15 bits (where LIMIT acts), or -1.
func firstLimitedPair(pcm []int16) int {
	for i := 0; i+1 < len(pcm); i += 2 {
		xa, xb := qmfConvolve(pcm[:i+2])
		if l, h := (xa+xb)>>14, (xa-xb)>>14; l != limit(l) || h != limit(h) {
			return i / 2
		}
	}
	return -1
}

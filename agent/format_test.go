package agent

import (
	"slices"
	"testing"

	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/media"
)

// sine is n samples of a tone at hz, sampled at rate.
func sine(hz, rate, amp float64, n int) []int16 { return testenv.Tone(int(rate), 0, n, amp, hz) }

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"": FormatMulaw, "mulaw": FormatMulaw, "l16-8000": FormatL16, "L16-16000": FormatL16Wide} {
		got, err := ParseFormat(in)
		if err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %v, %v", in, got, err)
		}
		if in != "" && got.String() != map[Format]string{FormatMulaw: "mulaw", FormatL16: "l16-8000", FormatL16Wide: "l16-16000"}[got] {
			t.Errorf("String %q", got.String())
		}
	}
	if _, err := ParseFormat("opus"); err == nil {
		t.Error("opus accepted")
	}
}

// Each format's frame of either rate is one wire frame of the format's
// rate: resampled when the rates differ, as it is when they agree.
func TestCodecFrames(t *testing.T) {
	for _, rate := range []float64{8000, 16000} {
		for _, f := range []Format{FormatMulaw, FormatL16, FormatL16Wide} {
			pcm := sine(440, rate, 9000, media.FrameLen(int(rate)))
			e := encoder{f: f}
			b := e.encode(nil, pcm)
			if len(b) != f.frameBytes() {
				t.Errorf("%v from %v Hz: %d bytes, want %d", f, rate, len(b), f.frameBytes())
			}
			d := decoder{f: f}
			back, err := d.decode(nil, b)
			if err != nil || len(back) != f.frameSamples() {
				t.Fatalf("%v: decode %d samples, %v", f, len(back), err)
			}
			if int(rate) == f.SampleRate && !f.isMulaw() && !slices.Equal(back, pcm) {
				t.Fatalf("%v from %v Hz not passed through losslessly", f, rate)
			}
		}
	}
	pcm := sine(440, 8000, 9000, FrameSamples)
	e := encoder{f: FormatMulaw}
	want := make([]byte, FrameSamples)
	media.EncodeULaw(want, pcm)
	if string(e.encode(nil, pcm)) != string(want) {
		t.Fatal("µ-law differs from the media package's")
	}
}

func TestPlayoutRing(t *testing.T) {
	p := newPlayout(1000)
	src := make([]int16, 700)
	for i := range src {
		src[i] = int16(i)
	}
	if n := p.push(src); n != 700 {
		t.Fatal(n)
	}
	dst := make([]int16, 500)
	if n := p.pop(dst); n != 500 || dst[499] != 499 {
		t.Fatal(n, dst[499])
	}
	// Wraps around, then refuses what does not fit.
	if n := p.push(src); n != 700 {
		t.Fatal(n)
	}
	if n := p.push(src); n != 100 {
		t.Fatalf("accepted %d beyond the bound", n)
	}
	if len(p.buf) > 1000 {
		t.Fatalf("ring grew to %d", len(p.buf))
	}
	big := make([]int16, 1000)
	if n := p.pop(big); n != 1000 || big[0] != 500 || big[199] != 699 || big[200] != 0 || big[899] != 699 || big[900] != 0 {
		t.Fatalf("pop %d: %d %d %d %d", n, big[0], big[199], big[200], big[900])
	}
	if p.queued != 1500 || p.played != 1500 {
		t.Fatal(p.queued, p.played)
	}
}

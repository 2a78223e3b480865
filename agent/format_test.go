package agent

import (
	"math"
	"testing"

	"github.com/handoff/handoff/media"
)

func sine(hz, rate, amp float64, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amp * math.Sin(2*math.Pi*hz*float64(i)/rate))
	}
	return out
}

func rms(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(s)))
}

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

// Upsampling a tone in 20 ms frames matches the same tone sampled at 16 kHz
// (23 samples late, the filter's delay), with no seams between frames.
func TestUpsampleTone(t *testing.T) {
	for _, hz := range []float64{300, 1000, 2000, 3000, 3400} {
		in := sine(hz, 8000, 10000, 50*FrameSamples)
		var u upsampler
		var out []int16
		for f := 0; f < len(in); f += FrameSamples {
			out = u.process(out, in[f:f+FrameSamples])
		}
		if len(out) != 2*len(in) {
			t.Fatalf("%v Hz: %d samples out of %d", hz, len(out), len(in))
		}
		const delay = (firTaps - 1) / 2
		ideal := sine(hz, 16000, 10000, len(out))
		var errSum, sigSum float64
		for j := 100; j < len(out); j++ {
			d := float64(out[j]) - float64(ideal[j-delay])
			errSum += d * d
			sigSum += float64(ideal[j-delay]) * float64(ideal[j-delay])
		}
		if snr := 10 * math.Log10(sigSum/errSum); snr < 25 {
			t.Errorf("%v Hz: SNR %.1f dB against the ideal 16 kHz tone, want >= 25", hz, snr)
		}
	}
}

// Downsampling keeps the telephone band and rejects what would alias.
func TestDownsampleResponse(t *testing.T) {
	gain := func(hz float64) float64 {
		in := sine(hz, 16000, 10000, 200*2*FrameSamples)
		var d downsampler
		var out []int16
		// Odd-sized chunks: state must carry across calls.
		for i := 0; i < len(in); i += 333 {
			out = d.process(out, in[i:min(i+333, len(in))])
		}
		if len(out) != len(in)/2 {
			t.Fatalf("%d samples out of %d", len(out), len(in))
		}
		return 20 * math.Log10(rms(out[100:])/rms(in[200:]))
	}
	for _, hz := range []float64{300, 1000, 2000, 3000, 3400} {
		if g := gain(hz); math.Abs(g) > 0.5 {
			t.Errorf("%v Hz: gain %.2f dB, want within ±0.5", hz, g)
		}
	}
	for _, hz := range []float64{4700, 5500, 6000, 7000, 7900} {
		if g := gain(hz); g > -45 {
			t.Errorf("%v Hz: gain %.1f dB, want below -45 (aliasing)", hz, g)
		}
	}
}

// 8 kHz -> 16 kHz -> 8 kHz gives the tone back.
func TestResampleRoundTrip(t *testing.T) {
	in := sine(800, 8000, 12000, 100*FrameSamples)
	var u upsampler
	var d downsampler
	var wide, back []int16
	for f := 0; f < len(in); f += FrameSamples {
		wide = u.process(wide[:0], in[f:f+FrameSamples])
		back = d.process(back, wide)
	}
	if g := 20 * math.Log10(rms(back[200:])/rms(in[200:])); math.Abs(g) > 0.5 {
		t.Errorf("round-trip gain %.2f dB", g)
	}
}

func TestCodecFrames(t *testing.T) {
	pcm := sine(440, 8000, 9000, FrameSamples)
	for _, f := range []Format{FormatMulaw, FormatL16, FormatL16Wide} {
		e := encoder{f: f}
		b := e.encode(nil, pcm)
		if len(b) != f.frameBytes() {
			t.Errorf("%v: %d bytes, want %d", f, len(b), f.frameBytes())
		}
		d := decoder{f: f}
		back, err := d.decode(nil, b)
		if err != nil || len(back) != FrameSamples {
			t.Fatalf("%v: decode %d samples, %v", f, len(back), err)
		}
		if f == FormatL16 {
			for i := range pcm {
				if back[i] != pcm[i] {
					t.Fatalf("l16-8000 not lossless at %d", i)
				}
			}
		}
		if f == FormatMulaw {
			want := make([]byte, FrameSamples)
			media.EncodeULaw(want, pcm)
			if string(b) != string(want) {
				t.Fatal("µ-law differs from the media package's")
			}
		}
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

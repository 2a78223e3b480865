package media

import (
	"math"
	"testing"

	"github.com/handoff/handoff/internal/testenv"
)

// Upsampling a tone in 20 ms frames matches the same tone sampled at 16 kHz
// (23 samples late, the filter's delay), with no seams between frames.
func TestUpsampleTone(t *testing.T) {
	for _, hz := range []float64{300, 1000, 2000, 3000, 3400} {
		in := tone(8000, 0, 50*FrameSamples, 10000, hz)
		var u Upsampler
		var out []int16
		for f := 0; f < len(in); f += FrameSamples {
			out = u.Upsample(out, in[f:f+FrameSamples])
		}
		if len(out) != 2*len(in) {
			t.Fatalf("%v Hz: %d samples out of %d", hz, len(out), len(in))
		}
		const delay = (firTaps - 1) / 2
		ideal := tone(16000, 0, len(out), 10000, hz)
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
		in := tone(16000, 0, 200*WideFrameSamples, 10000, hz)
		var d Downsampler
		var out []int16
		// Odd-sized chunks: state must carry across calls.
		for i := 0; i < len(in); i += 333 {
			out = d.Downsample(out, in[i:min(i+333, len(in))])
		}
		if len(out) != len(in)/2 {
			t.Fatalf("%d samples out of %d", len(out), len(in))
		}
		return 20 * math.Log10(testenv.RMS(out[100:])/testenv.RMS(in[200:]))
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
	in := tone(8000, 0, 100*FrameSamples, 12000, 800)
	var u Upsampler
	var d Downsampler
	var wide, back []int16
	for f := 0; f < len(in); f += FrameSamples {
		wide = u.Upsample(wide[:0], in[f:f+FrameSamples])
		back = d.Downsample(back, wide)
	}
	if g := 20 * math.Log10(testenv.RMS(back[200:])/testenv.RMS(in[200:])); math.Abs(g) > 0.5 {
		t.Errorf("round-trip gain %.2f dB", g)
	}
}

// Resampler.Frame passes a frame of the wanted rate through untouched and
// converts the other, without allocating.
func TestResamplerFrame(t *testing.T) {
	var r Resampler
	narrow, wide := make([]int16, FrameSamples), make([]int16, WideFrameSamples)
	if got := r.Frame(narrow, 8000); &got[0] != &narrow[0] {
		t.Fatal("an 8 kHz frame for 8 kHz was copied")
	}
	if got := r.Frame(narrow, 16000); len(got) != WideFrameSamples {
		t.Fatalf("upsampled to %d samples", len(got))
	}
	if got := r.Frame(wide, 8000); len(got) != FrameSamples {
		t.Fatalf("downsampled to %d samples", len(got))
	}
	if n := testing.AllocsPerRun(100, func() { r.Frame(narrow, 16000); r.Frame(wide, 8000) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

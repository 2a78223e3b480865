package media

import "math"

// The resamplers convert between 8 kHz (G.711, μ-law agents) and 16 kHz
// (G.722, l16-16000 agents) and share one anti-aliasing / anti-imaging
// filter: a 47-tap Kaiser-windowed sinc (beta 5) cut at 4 kHz for a 16 kHz
// stream, normalised to unity gain at DC. It is flat within half a dB up to
// 3.4 kHz (the telephone band) and about 50 dB down from 4.6 kHz, so what
// would fold back into the band after decimation (a 6 kHz tone would
// become 2 kHz), or the images interpolation leaves above 4 kHz, is
// inaudible. Its delay is 23 samples at 16 kHz (1.4 ms).
const firTaps = 47

var firCoef = func() [firTaps]float32 {
	const (
		fc   = 4000.0 / 16000
		beta = 5.0
	)
	var h [firTaps]float64
	var sum float64
	m := float64(firTaps-1) / 2
	for n := range firTaps {
		x := float64(n) - m
		sinc := 2 * fc
		if x != 0 {
			sinc = math.Sin(2*math.Pi*fc*x) / (math.Pi * x)
		}
		r := x / m
		h[n] = sinc * besselI0(beta*math.Sqrt(1-r*r)) / besselI0(beta)
		sum += h[n]
	}
	var out [firTaps]float32
	for n := range h {
		out[n] = float32(h[n] / sum)
	}
	return out
}()

// besselI0 is the modified Bessel function of the first kind, order 0.
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / (2 * float64(k))) * (x / (2 * float64(k)))
		sum += term
		if term < 1e-12*sum {
			break
		}
	}
	return sum
}

// fir runs firCoef over a stream, one sample in at a time.
type fir struct {
	// hist holds the last firTaps inputs twice over, so the newest firTaps
	// are always contiguous at hist[pos:pos+firTaps].
	hist [2 * firTaps]float32
	pos  int
}

func (f *fir) push(v float32) {
	f.hist[f.pos] = v
	f.hist[f.pos+firTaps] = v
	f.pos++
	if f.pos == firTaps {
		f.pos = 0
	}
}

func (f *fir) out() float32 {
	win := f.hist[f.pos : f.pos+firTaps]
	var acc float32
	for k, c := range firCoef {
		acc += c * win[k]
	}
	return acc
}

// Upsampler doubles the sample rate of a stream (8 kHz to 16 kHz): a zero
// between every two samples, then the low-pass filter (gain 2) removes the
// image above 4 kHz. Its state carries across calls, so frames join
// seamlessly; use one per stream. The zero value is ready to use.
type Upsampler struct{ f fir }

// Upsample appends the 16 kHz samples of src to dst; it allocates only
// when dst lacks the capacity (2*len(src) more).
func (u *Upsampler) Upsample(dst, src []int16) []int16 {
	for _, s := range src {
		u.f.push(2 * float32(s))
		dst = append(dst, clamp16(u.f.out()))
		u.f.push(0)
		dst = append(dst, clamp16(u.f.out()))
	}
	return dst
}

// Downsampler halves the sample rate of a stream (16 kHz to 8 kHz): the
// low-pass filter, then every second sample. Its state carries across
// calls; use one per stream. The zero value is ready to use.
type Downsampler struct {
	f     fir
	phase int
}

// Downsample appends the 8 kHz samples of src to dst; it allocates only
// when dst lacks the capacity (len(src)/2 more, rounded up).
func (d *Downsampler) Downsample(dst, src []int16) []int16 {
	for _, s := range src {
		d.f.push(float32(s))
		d.phase ^= 1
		if d.phase == 0 {
			dst = append(dst, clamp16(d.f.out()))
		}
	}
	return dst
}

func clamp16(v float32) int16 {
	switch {
	case v >= math.MaxInt16:
		return math.MaxInt16
	case v <= math.MinInt16:
		return math.MinInt16
	}
	return int16(math.Round(float64(v)))
}

// Resampler brings 20 ms frames of either rate (FrameRate: their length
// says which) to the rate a consumer wants, one stream of frames per
// Resampler. It does not allocate. The zero value is ready to use; not
// safe for concurrent use.
type Resampler struct {
	up   Upsampler
	down Downsampler
	out  [WideFrameSamples]int16
}

// Frame returns pcm as a frame at rate (8000 or 16000): pcm itself when it
// already is one, else its resampled copy, valid until the next call.
func (r *Resampler) Frame(pcm []int16, rate int) []int16 {
	switch from := FrameRate(len(pcm)); {
	case from == rate:
		return pcm
	case rate == 16000:
		return r.up.Upsample(r.out[:0], pcm)
	default:
		return r.down.Downsample(r.out[:0], pcm[:min(len(pcm), WideFrameSamples)])
	}
}

package testenv

import "math"

// Goertzel returns the amplitude, in sample units, of the component at freq
// (Hz) in pcm sampled at rate (Hz): about A for a sine of amplitude A at freq.
// A Hann window keeps a strong tone elsewhere (say a 1 kHz control) from
// leaking into the measured frequency, so tests can compare the levels of
// tones a few hundred hertz apart or more. It is meant for checking what a
// codec or a resampler lets through, e.g. that a 6 kHz tone survives a
// wideband path.
func Goertzel(pcm []int16, rate, freq float64) float64 {
	n := len(pcm)
	if n == 0 {
		return 0
	}
	c := 2 * math.Cos(2*math.Pi*freq/rate)
	var s1, s2, gain float64
	for i, x := range pcm {
		w := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n))
		gain += w
		s1, s2 = w*float64(x)+c*s1-s2, s1
	}
	power := s1*s1 + s2*s2 - c*s1*s2
	return 2 * math.Sqrt(max(power, 0)) / gain
}

// DB returns 20*log10(a/b), the level of amplitude a relative to b.
func DB(a, b float64) float64 { return 20 * math.Log10(a/b) }

// RMS is the root mean square of pcm, in sample units: A/√2 for a sine of
// amplitude A.
func RMS(pcm []int16) float64 {
	var sum float64
	for _, v := range pcm {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(pcm)))
}

package testenv

import "math"

// Tone is n samples at rate of the sum of sines at freqs (Hz), each of
// amplitude amp, from sample offset on: consecutive calls with offsets
// n apart join seamlessly, so a test can cut a tone into frames.
func Tone(rate, offset, n int, amp float64, freqs ...float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		var v float64
		for _, f := range freqs {
			v += amp * math.Sin(2*math.Pi*f*float64(offset+i)/float64(rate))
		}
		out[i] = int16(v)
	}
	return out
}

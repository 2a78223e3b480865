package testenv

import (
	"math"
	"testing"
)

func sine(n int, rate, freq, amp float64) []int16 { return Tone(int(rate), 0, n, amp, freq) }

func TestGoertzelMeasuresToneAmplitude(t *testing.T) {
	pcm := sine(3200, 16000, 6000, 8000)
	if a := Goertzel(pcm, 16000, 6000); math.Abs(a-8000) > 80 {
		t.Fatalf("6 kHz amplitude = %.1f, want about 8000", a)
	}
	if a := Goertzel(pcm, 16000, 1000); a > 8 {
		t.Fatalf("1 kHz amplitude of a pure 6 kHz tone = %.1f, want about 0", a)
	}
	// Off-bin frequency, next to a strong tone: the window keeps leakage low.
	pcm = sine(3333, 16000, 1000, 16000)
	if a := Goertzel(pcm, 16000, 1500); DB(a, 16000) > -60 {
		t.Fatalf("leakage 500 Hz off a 1 kHz tone: %.1f dB", DB(a, 16000))
	}
	if Goertzel(nil, 16000, 1000) != 0 {
		t.Fatal("empty input must measure 0")
	}
}

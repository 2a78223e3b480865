package media

import "math"

// Tone is a periodic signal of summed sine waves played in a cadence of on
// and off frames, such as ringback.
type Tone struct {
	frames [][]int16 // one cadence cycle, nil entries are silence
	next   int
}

// NewTone builds a tone of the given frequencies (Hz) and per-frequency
// amplitude, on for onFrames then off for offFrames (off 0: continuous).
func NewTone(freqs []float64, amplitude float64, onFrames, offFrames int) *Tone {
	t := &Tone{frames: make([][]int16, onFrames+offFrames)}
	for f := range onFrames {
		frame := make([]int16, FrameSamples)
		for i := range frame {
			n := float64(f*FrameSamples + i)
			var v float64
			for _, hz := range freqs {
				v += amplitude * math.Sin(2*math.Pi*hz*n/8000)
			}
			frame[i] = int16(v)
		}
		t.frames[f] = frame
	}
	return t
}

// NewRingback is the North American ringback: 440+480 Hz, 2 s on, 4 s off.
func NewRingback() *Tone { return NewTone([]float64{440, 480}, 3000, 100, 200) }

// Next returns the next 20 ms frame, false during the off part.
func (t *Tone) Next() ([]int16, bool) {
	f := t.frames[t.next]
	t.next = (t.next + 1) % len(t.frames)
	return f, f != nil
}

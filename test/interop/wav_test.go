package interop

// The little WAV the tests need: a tone to play (16-bit PCM, mono, 8 kHz,
// what baresip's aufile reads) and the reading of baresip's sndfile dump
// (16-bit PCM at the decoder's rate), cut into 20 ms frames.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"testing"
	"time"

	"github.com/handoff/handoff/internal/testenv"
)

const wavRate = 8000

// writeTone writes d of a hz tone at half scale to path.
func writeTone(t *testing.T, path string, hz float64, d time.Duration) {
	t.Helper()
	n := int(d.Seconds() * wavRate)
	var data bytes.Buffer
	for i := range n {
		_ = binary.Write(&data, binary.LittleEndian, int16(16000*math.Sin(2*math.Pi*hz*float64(i)/wavRate)))
	}
	var f bytes.Buffer
	f.WriteString("RIFF")
	_ = binary.Write(&f, binary.LittleEndian, uint32(36+data.Len()))
	f.WriteString("WAVEfmt ")
	for _, v := range []any{
		uint32(16), uint16(1), uint16(1), // PCM, mono
		uint32(wavRate), uint32(wavRate * 2), uint16(2), uint16(16),
	} {
		_ = binary.Write(&f, binary.LittleEndian, v)
	}
	f.WriteString("data")
	_ = binary.Write(&f, binary.LittleEndian, uint32(data.Len()))
	f.Write(data.Bytes())
	if err := os.WriteFile(path, f.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// pcmWAV is a decoded mono 16-bit WAV.
type pcmWAV struct {
	rate    int
	samples []int16
}

// readWAV reads a mono 16-bit PCM WAV. sndfile leaves the RIFF and data
// sizes at 0 while the file is open, so the data chunk runs to the end of
// the file whatever its header says.
func readWAV(path string) (pcmWAV, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return pcmWAV{}, err
	}
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return pcmWAV{}, errors.New("not a RIFF WAVE file")
	}
	var w pcmWAV
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:p+8]))
		body := b[p+8:]
		switch id {
		case "fmt ":
			if len(body) < 16 || binary.LittleEndian.Uint16(body[0:2]) != 1 ||
				binary.LittleEndian.Uint16(body[2:4]) != 1 || binary.LittleEndian.Uint16(body[14:16]) != 16 {
				return pcmWAV{}, errors.New("want mono 16-bit PCM")
			}
			w.rate = int(binary.LittleEndian.Uint32(body[4:8]))
		case "data":
			if w.rate == 0 {
				return pcmWAV{}, errors.New("data before fmt")
			}
			if size == 0 || size > len(body) {
				size = len(body)
			}
			w.samples = make([]int16, size/2)
			for i := range w.samples {
				w.samples[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
			}
			return w, nil
		}
		p += 8 + size + size%2
	}
	return pcmWAV{}, errors.New("no data chunk")
}

// frames counts the 20 ms frames of w carrying hz (more than half of
// their energy) and those that are not silent.
func (w pcmWAV) frames(hz float64) (tone, loud int) {
	n := w.rate / 50
	for i := 0; i+n <= len(w.samples); i += n {
		f := w.samples[i : i+n]
		if testenv.RMS(f) > 300 {
			loud++
			if toneShare(f, float64(w.rate), hz) > 0.5 {
				tone++
			}
		}
	}
	return tone, loud
}

// toneShare is the share of a frame's power at hz: about 1 for a pure
// tone at hz, about 0 for silence or another tone.
func toneShare(frame []int16, rate, hz float64) float64 {
	r := testenv.RMS(frame)
	if r == 0 {
		return 0
	}
	a := testenv.Goertzel(frame, rate, hz) // a sine's amplitude: its power is a²/2
	return a * a / 2 / (r * r)
}

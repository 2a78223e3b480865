package agent

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/handoff/handoff/transfer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, l Loopback) Session {
	t.Helper()
	s, err := l.Open(context.Background(), CallInfo{TransferID: "t1", Input: transfer.InputContext{TaskName: "Welcome"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestLoopbackGreetsThenEchoes(t *testing.T) {
	s := open(t, Loopback{})
	for range len(greeting) {
		f, ok := s.NextFrame()
		if !ok || len(f) != FrameSamples {
			t.Fatal("greeting frame missing")
		}
	}
	if _, ok := s.NextFrame(); ok {
		t.Fatal("agent spoke with nothing to echo")
	}
	in := make([]int16, FrameSamples)
	for i := range in {
		in[i] = int16(i * 7)
	}
	s.PushAudio(TrackCaller, in)
	in[0] = 999 // the session must have copied the frame
	s.PushAudio(TrackDestination, in)
	f, ok := s.NextFrame()
	if !ok || f[0] != 0 || f[159] != 159*7 {
		t.Fatalf("echo frame wrong: ok=%v f[0]=%d f[159]=%d", ok, f[0], f[159])
	}
	if _, ok := s.NextFrame(); ok {
		t.Fatal("destination audio was echoed")
	}
	s.ListenOnly()
	s.PushAudio(TrackCaller, in)
	if _, ok := s.NextFrame(); ok {
		t.Fatal("listen-only session spoke")
	}
}

// A G.722 caller is echoed at 16 kHz; the greeting stays an 8 kHz tone
// that the pacer resamples.
func TestLoopbackEchoesWideband(t *testing.T) {
	s := open(t, Loopback{})
	in := make([]int16, WideFrameSamples)
	for i := range in {
		in[i] = int16(i * 5)
	}
	s.PushAudio(TrackCaller, in)
	for range greeting {
		s.NextFrame()
	}
	f, ok := s.NextFrame()
	if !ok || len(f) != WideFrameSamples || f[319] != 319*5 {
		t.Fatalf("echo of a 16 kHz frame: ok=%v, %d samples", ok, len(f))
	}
}

func TestLoopbackEchoQueueIsBounded(t *testing.T) {
	s := open(t, Loopback{})
	frame := make([]int16, FrameSamples)
	for i := range 10 * echoDepth {
		frame[0] = int16(i)
		s.PushAudio(TrackCaller, frame)
	}
	for range greeting {
		s.NextFrame()
	}
	n := 0
	var first int16 = -1
	for {
		f, ok := s.NextFrame()
		if !ok {
			break
		}
		if first < 0 {
			first = f[0]
		}
		n++
	}
	if n != echoDepth || first != int16(10*echoDepth-echoDepth) {
		t.Fatalf("echoed %d frames starting at %d; want the newest %d", n, first, echoDepth)
	}
}

func TestLoopbackDTMFFinishes(t *testing.T) {
	for _, c := range []struct {
		end  rune
		want string
	}{{'#', TransferSystem}, {'0', TransferAgent}} {
		s := open(t, Loopback{})
		for _, d := range "12*9" {
			s.PushDTMF(DTMF{Digit: d})
		}
		select {
		case <-s.Done():
			t.Fatal("finished before the end key")
		default:
		}
		s.PushDTMF(DTMF{Digit: c.end})
		s.PushDTMF(DTMF{Digit: c.end}) // a second press must not panic
		<-s.Done()
		r := s.Result()
		if r.TransferType != c.want || r.TransferVariables["digits"] != "12*9" || r.CurrentTaskName != "Welcome" {
			t.Fatalf("%c: result %+v", c.end, r)
		}
	}
}

func TestLoopbackMaxDuration(t *testing.T) {
	s := open(t, Loopback{MaxDuration: 20 * time.Millisecond})
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("max duration never finished the session")
	}
	if r := s.Result(); r.TransferType != TransferSystem || r.ReferenceVariables["reason"] != "max_duration" {
		t.Fatalf("result %+v", r)
	}
}

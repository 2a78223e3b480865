package agent

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

// Loopback is the built-in agent for trying the whole loop without any AI:
// it plays a short greeting tone, echoes the caller, collects DTMF digits,
// and finishes on '#' (SYSTEM) or '0' (AGENT) or after MaxDuration. It
// works at either rate: the echo keeps the caller's (16 kHz for a G.722
// call), the greeting is an 8 kHz tone the pacer resamples for G.722.
type Loopback struct {
	MaxDuration time.Duration
}

// Transfer types the loopback agent finishes with.
const (
	TransferSystem = "SYSTEM"
	TransferAgent  = "AGENT"
)

const (
	echoDepth    = 25 // frames (500 ms) of caller audio waiting to be echoed
	greetingMS   = 400
	greetingHz   = 440
	greetingGain = 6000
)

// greeting is the tone every loopback call starts with, built once.
var greeting = func() [][]int16 {
	frames := make([][]int16, greetingMS/20)
	for f := range frames {
		frames[f] = make([]int16, FrameSamples)
		for i := range frames[f] {
			n := f*FrameSamples + i
			frames[f][i] = int16(greetingGain * math.Sin(2*math.Pi*greetingHz*float64(n)/8000))
		}
	}
	return frames
}()

// Open implements Pipeline.
func (l Loopback) Open(ctx context.Context, info CallInfo) (Session, error) {
	s := &loopbackSession{done: make(chan struct{}), task: info.Input.TaskName, echo: media.NewFrameQueue(echoDepth)}
	if s.task == "" {
		s.task = "loopback"
	}
	if l.MaxDuration > 0 {
		s.timer = time.AfterFunc(l.MaxDuration, func() { s.finish(TransferSystem, "max_duration") })
	}
	return s, nil
}

type loopbackSession struct {
	echo       *media.FrameQueue // caller audio waiting to be echoed
	mu         sync.Mutex
	greetAt    int
	listenOnly bool
	digits     []rune
	result     transfer.OutputContext
	task       string
	timer      *time.Timer
	done       chan struct{}
	finished   bool
}

func (s *loopbackSession) PushAudio(track Track, frame []int16) {
	if track != TrackCaller {
		return
	}
	s.mu.Lock()
	mute := s.listenOnly || s.finished
	s.mu.Unlock()
	if !mute {
		s.echo.Push(frame) // drops the oldest when the pacer falls behind
	}
}

func (s *loopbackSession) NextFrame() ([]int16, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listenOnly {
		return nil, false
	}
	if s.greetAt < len(greeting) {
		s.greetAt++
		return greeting[s.greetAt-1], true
	}
	return s.echo.Pop()
}

func (s *loopbackSession) PushDTMF(d DTMF) {
	switch d.Digit {
	case '#':
		s.finish(TransferSystem, "caller_pressed_hash")
	case '0':
		s.finish(TransferAgent, "caller_pressed_zero")
	default:
		s.mu.Lock()
		if !s.finished {
			s.digits = append(s.digits, d.Digit)
		}
		s.mu.Unlock()
	}
}

func (s *loopbackSession) finish(transferType, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return
	}
	s.finished = true
	s.result = transfer.OutputContext{
		TransferType:       transferType,
		CurrentTaskName:    s.task,
		ReferenceVariables: map[string]string{"reason": reason},
		TransferVariables:  map[string]string{"digits": string(s.digits)},
	}
	close(s.done)
}

func (s *loopbackSession) Done() <-chan struct{} { return s.done }

func (s *loopbackSession) Result() transfer.OutputContext {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.result
}

func (s *loopbackSession) ListenOnly() {
	s.mu.Lock()
	s.listenOnly = true
	s.mu.Unlock()
}

func (s *loopbackSession) Close() {
	if s.timer != nil {
		s.timer.Stop()
	}
}

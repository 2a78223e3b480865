package siptest

import (
	"context"

	"github.com/handoff/handoff/agent"
)

// Tap is the agent pipeline of a gateway under test: it passes everything
// to Pipeline and shows the test what the agent receives. OnAudio and
// OnDTMF (either may be nil) see every session's frames and key presses
// before the agent does, from the sessions' goroutines.
type Tap struct {
	agent.Pipeline
	OnAudio func(track agent.Track, frame []int16)
	OnDTMF  func(d agent.DTMF)
}

// Open implements agent.Pipeline.
func (p *Tap) Open(ctx context.Context, info agent.CallInfo) (agent.Session, error) {
	s, err := p.Pipeline.Open(ctx, info)
	if err != nil {
		return nil, err
	}
	return &tapSession{Session: s, tap: p}, nil
}

type tapSession struct {
	agent.Session
	tap *Tap
}

func (s *tapSession) PushAudio(track agent.Track, frame []int16) {
	if s.tap.OnAudio != nil {
		s.tap.OnAudio(track, frame)
	}
	s.Session.PushAudio(track, frame)
}

func (s *tapSession) PushDTMF(d agent.DTMF) {
	if s.tap.OnDTMF != nil {
		s.tap.OnDTMF(d)
	}
	s.Session.PushDTMF(d)
}

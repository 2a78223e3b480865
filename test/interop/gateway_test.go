// Package interop runs Handoff against third-party peers nobody here wrote:
// baresip (a Debian-packaged softphone) calls an in-process Handoff SIP
// server with the built-in loopback agent, on loopback only.
package interop

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/internal/gatewaytest"
	hsip "github.com/handoff/handoff/sip"
	"github.com/handoff/handoff/transfer"
)

func TestMain(m *testing.M) {
	sip.SetDefaultLogger(quiet)
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.DiscardHandler)

// gateway is a Handoff SIP server on loopback with its own store, a
// Prometheus registry of its own and the loopback agent behind a recorder.
type gateway struct {
	*gatewaytest.Gateway
	reg   *prometheus.Registry
	agent *recorder
}

func newGateway(t *testing.T) *gateway {
	t.Helper()
	g := &gateway{reg: prometheus.NewRegistry(), agent: &recorder{Pipeline: agent.Loopback{MaxDuration: time.Minute}}}
	g.Gateway = gatewaytest.Start(t, 44000, 44999, g.reg, hsip.Config{
		AckTimeout: 5 * time.Second,
		Pipeline:   g.agent,
		Return:     hsip.ReturnConfig{ReferTimeout: 10 * time.Second},
	})
	return g
}

// create registers a SIP transfer returned by ret (to returnURI for REFER)
// and returns the URI to call it at.
func (g *gateway) create(id string, ret transfer.ReturnType, returnURI string) string {
	g.T.Helper()
	return g.Create(id, transfer.SIPReturn{ReturnTransferType: ret, ReturnURI: returnURI}, &transfer.InputContext{TaskName: "interop"})
}

// recorder wraps the agent pipeline and records what its sessions hear:
// the caller's frames (how many, how many carry the caller's test tone)
// and the digits with how they arrived.
type recorder struct {
	agent.Pipeline
	mu         sync.Mutex
	frames     int
	toneFrames int
	digits     []agent.DTMF
}

type recordingSession struct {
	agent.Session
	r *recorder
}

func (r *recorder) Open(ctx context.Context, info agent.CallInfo) (agent.Session, error) {
	s, err := r.Pipeline.Open(ctx, info)
	if err != nil {
		return nil, err
	}
	return &recordingSession{Session: s, r: r}, nil
}

func (s *recordingSession) PushAudio(track agent.Track, frame []int16) {
	if track == agent.TrackCaller {
		tone := toneShare(frame, float64(50*len(frame)), callerToneHz) > 0.5 // 20 ms frames
		s.r.mu.Lock()
		s.r.frames++
		if tone {
			s.r.toneFrames++
		}
		s.r.mu.Unlock()
	}
	s.Session.PushAudio(track, frame)
}

func (s *recordingSession) PushDTMF(d agent.DTMF) {
	s.r.mu.Lock()
	s.r.digits = append(s.r.digits, d)
	s.r.mu.Unlock()
	s.Session.PushDTMF(d)
}

// heard returns the caller frames so far, those carrying the caller's
// tone, and the digits.
func (r *recorder) heard() (frames, tone int, digits []agent.DTMF) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.frames, r.toneFrames, append([]agent.DTMF(nil), r.digits...)
}

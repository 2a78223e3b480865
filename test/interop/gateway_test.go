// Package interop runs Handoff against third-party peers nobody here wrote:
// baresip (a Debian-packaged softphone) calls an in-process Handoff SIP
// server with the built-in loopback agent, on loopback only.
package interop

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/internal/gatewaytest"
	"github.com/handoff/handoff/internal/siptest"
	hsip "github.com/handoff/handoff/sip"
	"github.com/handoff/handoff/transfer"
)

func TestMain(m *testing.M) {
	sip.SetDefaultLogger(quiet)
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.DiscardHandler)

// gateway is a Handoff SIP server on loopback with its own store, a
// Prometheus registry of its own and the loopback agent, whose hearing a
// recorder records.
type gateway struct {
	*gatewaytest.Gateway
	reg   *prometheus.Registry
	agent *recorder
}

func newGateway(t *testing.T) *gateway {
	t.Helper()
	g := &gateway{reg: prometheus.NewRegistry(), agent: &recorder{}}
	g.Gateway = gatewaytest.Start(t, 44000, 44999, g.reg, hsip.Config{
		AckTimeout: 5 * time.Second,
		Pipeline:   &siptest.Tap{Pipeline: agent.Loopback{MaxDuration: time.Minute}, OnAudio: g.agent.audio, OnDTMF: g.agent.dtmf},
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

// recorder records what the agent hears (the OnAudio and OnDTMF of the
// gateway's siptest.Tap): the caller's frames (how many, how many carry
// the caller's test tone) and the digits with how they arrived.
type recorder struct {
	mu         sync.Mutex
	frames     int
	toneFrames int
	digits     []agent.DTMF
}

func (r *recorder) audio(track agent.Track, frame []int16) {
	if track != agent.TrackCaller {
		return
	}
	tone := toneShare(frame, float64(50*len(frame)), callerToneHz) > 0.5 // 20 ms frames
	r.mu.Lock()
	r.frames++
	if tone {
		r.toneFrames++
	}
	r.mu.Unlock()
}

func (r *recorder) dtmf(d agent.DTMF) {
	r.mu.Lock()
	r.digits = append(r.digits, d)
	r.mu.Unlock()
}

// heard returns the caller frames so far, those carrying the caller's
// tone, and the digits.
func (r *recorder) heard() (frames, tone int, digits []agent.DTMF) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.frames, r.toneFrames, append([]agent.DTMF(nil), r.digits...)
}

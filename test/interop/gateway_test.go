// Package interop runs Handoff against third-party peers nobody here wrote:
// baresip (a Debian-packaged softphone) calls an in-process Handoff SIP
// server with the built-in loopback agent, on loopback only.
package interop

import (
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/internal/siptest"
	"github.com/handoff/handoff/media"
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
	siptest.Transfers // the transfers, read as their owner "ivr"
	t                 *testing.T
	srv               *hsip.Server
	reg               *prometheus.Registry
	agent             *recorder
}

func newGateway(t *testing.T) *gateway {
	t.Helper()
	st, err := transfer.OpenBolt(filepath.Join(t.TempDir(), "handoff.db"), transfer.BoltOptions{Quarantine: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	svc := transfer.NewService(st, transfer.ServiceConfig{TTL: time.Minute, Logger: quiet})
	ports, err := media.NewPortPool(netip.MustParseAddr("127.0.0.1"), 44000, 44999, 0)
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{
		Transfers: siptest.Transfers{T: t, Svc: svc, Owner: "ivr"},
		t:         t,
		reg:       prometheus.NewRegistry(),
		agent:     &recorder{Pipeline: agent.Loopback{MaxDuration: time.Minute}},
	}
	srv, err := hsip.New(hsip.Config{
		Listen:       []string{"udp://127.0.0.1:0"},
		TrustedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		AckTimeout:   5 * time.Second,
		RTPTimeout:   10 * time.Second,
		Ports:        ports,
		Pipeline:     g.agent,
		Logger:       quiet,
		Return:       hsip.ReturnConfig{ReferTimeout: 10 * time.Second},
	}, svc, g.reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	g.srv = srv
	siptest.StopOnCleanup(t, srv.Shutdown, ports.InUse, st.Close)
	return g
}

// create registers a SIP transfer returned by ret (to returnURI for REFER)
// and returns the URI to call it at.
func (g *gateway) create(id string, ret transfer.ReturnType, returnURI string) string {
	g.t.Helper()
	if _, _, err := g.Svc.Create(context.Background(), "ivr", transfer.CreateRequest{
		ID: id, ExternalConversationID: "conv-" + id, Type: transfer.TypeSIP,
		SIP:          &transfer.SIPReturn{ReturnTransferType: ret, ReturnURI: returnURI},
		InputContext: &transfer.InputContext{TaskName: "interop"},
	}); err != nil {
		g.t.Fatal(err)
	}
	return g.srv.TransferURI(id)
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

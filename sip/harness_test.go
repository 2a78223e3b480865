package sip

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/goleak"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/internal/siptest"
	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

func TestMain(m *testing.M) {
	// Short SIP timers keep retransmission and timeout paths quick.
	sip.SetTimers(50*time.Millisecond, 400*time.Millisecond, 500*time.Millisecond)
	sip.SetDefaultLogger(quiet)
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.DiscardHandler)

var answerNone = sipgo.AnswerOptions{}

// gateway is a Handoff SIP server on loopback with its own store.
type gateway struct {
	siptest.Transfers // the transfers, read as their owner "ivr"
	t                 *testing.T
	svc               *transfer.Service
	srv               *Server
	ports             *media.PortPool
	addr              string // udp host:port
	tcp               string // tcp host:port
}

type gatewayOption func(*Config)

func newGateway(t *testing.T, opts ...gatewayOption) *gateway {
	t.Helper()
	return newGatewayOn(t, nil, opts...)
}

// newGatewayOn builds a gateway whose store is wrapped by wrap (for faults).
func newGatewayOn(t *testing.T, wrap func(transfer.Store) transfer.Store, opts ...gatewayOption) *gateway {
	t.Helper()
	bolt, err := transfer.OpenBolt(filepath.Join(t.TempDir(), "handoff.db"), transfer.BoltOptions{Quarantine: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var st transfer.Store = bolt
	if wrap != nil {
		st = wrap(bolt)
	}
	svc := transfer.NewService(st, transfer.ServiceConfig{TTL: time.Minute, Logger: quiet})
	if err := svc.SetNumbers(context.Background(), map[string][]string{"US": {"+19995550100-+19995550109"}}); err != nil {
		t.Fatal(err)
	}
	ports, err := media.NewPortPool(netip.MustParseAddr("127.0.0.1"), 41000, 41999, 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Listen:       []string{"udp://127.0.0.1:0", "tcp://127.0.0.1:0"},
		TrustedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		AckTimeout:   2 * time.Second,
		RTPTimeout:   10 * time.Second,
		Ports:        ports,
		Pipeline:     agent.Loopback{MaxDuration: time.Minute},
		Logger:       quiet,
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(cfg, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	g := &gateway{Transfers: siptest.Transfers{T: t, Svc: svc, Owner: "ivr"}, t: t, svc: svc, srv: srv, ports: ports}
	for _, a := range srv.Addrs() {
		network, hp, _ := strings.Cut(a, "://")
		if network == "udp" {
			g.addr = hp
		} else {
			g.tcp = hp
		}
	}
	siptest.StopOnCleanup(t, srv.Shutdown, ports.InUse, st.Close)
	return g
}

func (g *gateway) createPhone(id string) *transfer.Transfer {
	g.t.Helper()
	tr, _, err := g.svc.Create(context.Background(), "ivr", transfer.CreateRequest{
		ID: id, ExternalConversationID: "conv-" + id, Type: transfer.TypePhoneNumber, Country: "US",
	})
	if err != nil {
		g.t.Fatal(err)
	}
	return tr
}

func (g *gateway) createSIP(id string) *transfer.Transfer {
	g.t.Helper()
	tr, _, err := g.svc.Create(context.Background(), "ivr", transfer.CreateRequest{
		ID: id, ExternalConversationID: "conv-" + id, Type: transfer.TypeSIP,
		SIP:          &transfer.SIPReturn{ReturnTransferType: transfer.ReturnBye},
		InputContext: &transfer.InputContext{TaskName: "Welcome"},
	})
	if err != nil {
		g.t.Fatal(err)
	}
	return tr
}

// The caller side comes from internal/siptest, shared with test/e2e.
type (
	phone = siptest.Phone
	call  = siptest.Call
)

func newPhone(t *testing.T) *phone { return siptest.NewPhone(t, "127.0.0.1") }

var (
	eventually = testenv.Eventually
	sdpBody    = siptest.SDP
	statusOf   = siptest.StatusOf
	pattern    = siptest.Pattern
)

func errorsAs(err error, target any) bool { return errors.As(err, target) }

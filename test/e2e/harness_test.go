// Package e2e runs Handoff's SIP server against the reference agent over a
// real WebSocket, with sipgo callers sending and receiving real RTP, all
// on loopback.
package e2e

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/agent/refagent"
	"github.com/handoff/handoff/internal/gatewaytest"
	"github.com/handoff/handoff/internal/siptest"
	"github.com/handoff/handoff/internal/testenv"
	hsip "github.com/handoff/handoff/sip"
	"github.com/handoff/handoff/transfer"
)

func TestMain(m *testing.M) {
	sip.SetTimers(50*time.Millisecond, 400*time.Millisecond, 500*time.Millisecond)
	sip.SetDefaultLogger(quiet)
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.DiscardHandler)

// refAgent starts the reference agent on loopback and returns its URL.
func refAgent(t *testing.T, opts refagent.Options) string {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	ra := refagent.New(opts)
	srv := httptest.NewServer(ra)
	t.Cleanup(srv.Close)
	t.Cleanup(ra.Close) // runs before the HTTP server's Close
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/agent"
}

// gateway is a Handoff SIP server on loopback with its own store, linked
// to an agent over WebSocket.
type gateway struct {
	*gatewaytest.Gateway
	metrics *prometheus.Registry // the agent link's metrics
}

func newGateway(t *testing.T, ws *agent.WebSocket) *gateway {
	t.Helper()
	g := &gateway{metrics: prometheus.NewRegistry()}
	ws.Logger = quiet
	ws.Metrics = agent.NewMetrics(g.metrics)
	g.Gateway = gatewaytest.Start(t, 43000, 43999, nil, hsip.Config{
		AckTimeout: 2 * time.Second,
		Pipeline:   ws,
		Return:     hsip.ReturnConfig{ReferTimeout: 5 * time.Second},
	})
	return g
}

func (g *gateway) create(id string, ret transfer.ReturnType) {
	g.T.Helper()
	sr := transfer.SIPReturn{ReturnTransferType: ret}
	if ret == transfer.ReturnRefer {
		sr.ReturnURI = "sip:ivr-return@127.0.0.1:5999;transport=udp"
	}
	g.Create(id, sr, &transfer.InputContext{TaskName: "Billing", InputVariables: map[string]string{"account": "42"}})
}

var eventually = testenv.Eventually

// phone is the shared test caller (internal/siptest) acting as the IVR: it
// accepts REFERs (the blind return) and hands them to the test.
type phone struct {
	*siptest.Phone
	refers chan *sip.Request
}

func newPhone(t *testing.T) *phone {
	t.Helper()
	p := &phone{Phone: siptest.NewPhone(t, "127.0.0.1"), refers: make(chan *sip.Request, 4)}
	p.OnRefer(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 202, "Accepted", nil))
		p.refers <- req
	})
	return p
}

// call places an answered, acknowledged call to uri offering PCMU and
// telephone-event, with an X- header the agent should see.
func (p *phone) call(uri string) (*siptest.Call, error) {
	p.T.Helper()
	c, err := p.Invite(uri, p.Offer("0 101"), sipgo.AnswerOptions{}, sip.NewHeader("X-Customer-Tier", "gold"))
	if err != nil {
		return nil, err
	}
	if err := c.Dlg.Ack(context.Background()); err != nil {
		p.T.Fatal(err)
	}
	return c, nil
}

func dialogResponse(err error) *sip.Response {
	var e *sipgo.ErrDialogResponse
	if errors.As(err, &e) {
		return e.Res
	}
	return nil
}

// talk sends a 20 ms PCMU frame from next() every 20 ms until stop is
// closed; the returned channel closes when it has stopped. Only this
// goroutine writes RTP while it runs.
func talk(c *siptest.Call, stop <-chan struct{}, next func() []byte) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				c.SendAudio(next())
			}
		}
	}()
	return done
}

func (p *phone) waitRefer() *sip.Request {
	p.T.Helper()
	return siptest.Receive(p.T, p.refers, "the gateway's REFER")
}

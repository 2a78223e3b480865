// Package gatewaytest starts an in-process Handoff SIP server on loopback
// for the tests outside package sip (test/e2e, test/interop): its own bolt
// store and service, an RTP port range of its own, loopback trusted, and a
// cleanup that checks every port went back to the pool. (Package sip's own
// tests have theirs: internal/siptest must not import sip.)
package gatewaytest

import (
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/handoff/handoff/internal/siptest"
	"github.com/handoff/handoff/media"
	hsip "github.com/handoff/handoff/sip"
	"github.com/handoff/handoff/transfer"
)

// Owner is the credential the gateway's transfers are created and read as.
const Owner = "ivr"

// Gateway is a running Handoff SIP server and the transfers it serves.
type Gateway struct {
	siptest.Transfers // the transfers, read as Owner
	Srv               *hsip.Server
}

// Start starts a gateway with RTP ports rtpFrom to rtpTo and its metrics
// in reg (nil: none). cfg gives what the test chooses (the pipeline, the
// timeouts); Start sets Listen (UDP on a free loopback port),
// TrustedCIDRs (127.0.0.0/8), RTPTimeout (10 s), Ports and a silent Logger.
func Start(t *testing.T, rtpFrom, rtpTo int, reg prometheus.Registerer, cfg hsip.Config) *Gateway {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	st, err := transfer.OpenBolt(filepath.Join(t.TempDir(), "handoff.db"), transfer.BoltOptions{Quarantine: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	svc := transfer.NewService(st, transfer.ServiceConfig{TTL: time.Minute, Logger: quiet})
	ports, err := media.NewPortPool(netip.MustParseAddr("127.0.0.1"), rtpFrom, rtpTo, 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = []string{"udp://127.0.0.1:0"}
	cfg.TrustedCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	cfg.RTPTimeout = 10 * time.Second
	cfg.Ports = ports
	cfg.Logger = quiet
	srv, err := hsip.New(cfg, svc, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	siptest.StopOnCleanup(t, srv.Shutdown, ports.InUse, st.Close)
	return &Gateway{Transfers: siptest.Transfers{T: t, Svc: svc, Owner: Owner}, Srv: srv}
}

// Create registers SIP transfer id, returned as ret says, with input as
// its inputContext, and returns the URI to call it at.
func (g *Gateway) Create(id string, ret transfer.SIPReturn, input *transfer.InputContext) string {
	g.T.Helper()
	if _, _, err := g.Svc.Create(context.Background(), Owner, transfer.CreateRequest{
		ID: id, ExternalConversationID: "conv-" + id, Type: transfer.TypeSIP, SIP: &ret, InputContext: input,
	}); err != nil {
		g.T.Fatal(err)
	}
	return g.Srv.TransferURI(id)
}

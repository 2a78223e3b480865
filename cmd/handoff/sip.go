package main

import (
	"context"
	"log/slog"

	"github.com/handoff/handoff/transfer"
	"github.com/prometheus/client_golang/prometheus"
)

// ---------------------------------------------------------------------------
// SEAM: the SIP server.
//
// startSIP starts the SIP B2BUA (listeners from cfg.SIP.Listen, media from
// cfg.Media, the agent from cfg.Agent) on svc and registers its metrics on
// reg. It returns once the listeners are up. ctx ends when the process has
// finished draining; it is not the drain signal.
//
// stop is called once on SIGTERM/SIGINT, after the control API has been
// marked draining: it must refuse new calls (OPTIONS and INVITE answer 503),
// wait for the calls in progress to end, and return when they have or when
// its ctx (bounded by drain.timeout) is done, in which case it ends the
// remaining calls and returns ctx's error.
//
// Until the SIP package lands this is a no-op.
// ---------------------------------------------------------------------------
func startSIP(ctx context.Context, cfg Config, svc *transfer.Service, reg prometheus.Registerer, log *slog.Logger) (stop func(context.Context) error, err error) {
	log.Warn("SIP server not built into this binary yet; only the control API is served",
		"sip_listen", cfg.SIP.Listen, "sip_external_host", cfg.SIP.ExternalHost)
	return func(context.Context) error { return nil }, nil
}

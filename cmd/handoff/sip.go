package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/sip"
	"github.com/handoff/handoff/transfer"
)

// portQuarantine is how long a released RTP port pair rests, so late
// packets of an ended call never reach the next one.
const portQuarantine = 2 * time.Second

// startSIP starts the SIP B2BUA on svc and registers its metrics on reg. It
// returns once the listeners are up. The server's SetDraining refuses new
// calls (INVITE and OPTIONS answer 503); its Shutdown drains: calls in
// progress run on until they end or its ctx is done, when they get BYE.
func startSIP(ctx context.Context, cfg Config, svc *transfer.Service, reg prometheus.Registerer, log *slog.Logger, twilio *agent.TwilioAPI) (*sip.Server, error) {
	bind, err := netip.ParseAddr(cfg.Media.Bind)
	if err != nil {
		return nil, fmt.Errorf("media.bind: %w", err)
	}
	first, last := cfg.RTPPortRange()
	ports, err := media.NewPortPool(bind, first, last, portQuarantine)
	if err != nil {
		return nil, fmt.Errorf("media.rtp_ports: %w", err)
	}
	pipeline, agentLeg, err := agentLink(cfg, reg, log, twilio)
	if err != nil {
		return nil, err
	}
	users := map[string]string{}
	for _, u := range cfg.SIP.Digest.Users {
		users[u.Username] = u.Password
	}
	tlsConf, err := serverTLS("sip.tls", cfg.SIP.TLS)
	if err != nil {
		return nil, err
	}
	limits, overload := cfg.SIP.admission()
	srv, err := sip.New(sip.Config{
		TLS:            tlsConf,
		Limits:         limits,
		Overload:       overload,
		Flood:          sip.FloodConfig{Rate: cfg.SIP.Flood.Rate, Burst: cfg.SIP.Flood.Burst, LimitTrusted: cfg.SIP.Flood.LimitTrusted},
		Listen:         cfg.SIP.Listen,
		ExternalHost:   cfg.SIP.ExternalHost,
		MediaAddr:      mediaAddr(bind),
		TrustedCIDRs:   cfg.TrustedPrefixes(),
		DigestRealm:    cfg.SIP.Digest.Realm,
		DigestUsers:    users,
		TransferHeader: cfg.SIP.TransferHeader,
		AckTimeout:     cfg.SIP.AckTimeout,
		RingingAfter:   cfg.SIP.RingingAfter,
		MinSE:          cfg.SIP.SessionMinSE,
		Return: sip.ReturnConfig{
			ReferTimeout:    cfg.SIP.Return.ReferTimeout,
			RingTimeout:     cfg.SIP.Return.RingTimeout,
			Fallback:        cfg.SIP.Return.Fallback,
			ContextEncoding: cfg.SIP.Return.ContextEncoding,
			MaxContextBytes: cfg.SIP.Return.MaxContextBytes,
			UUIPassthrough:  cfg.SIP.Return.UUIPassthrough,
		},
		HeadersMode: sip.HeadersMode{
			Enabled:   cfg.SIP.HeadersMode.Enabled,
			User:      cfg.SIP.HeadersMode.User,
			Owner:     cfg.SIP.HeadersMode.Owner,
			ReturnURI: cfg.SIP.HeadersMode.ReturnURI,
			Names:     cfg.SIP.HeadersMode.Names,
		},
		RTPTimeout:          cfg.Media.RTPTimeout,
		SRTP:                cfg.Media.SRTP,
		Codecs:              cfg.Media.codecs(),
		DisableComfortNoise: !cfg.Media.ComfortNoise,
		NodeID:              cfg.Node.ID,
		Ports:               ports,
		Pipeline:            pipeline,
		AgentLeg:            agentLeg,
		Logger:              log,
	}, svc, reg)
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	log.Info("sip listening", "addrs", srv.Addrs(), "rtp_ports", cfg.Media.RTPPorts)
	return srv, nil
}

// mediaAddr is the address advertised in SDP: the bind address, unless it
// is a wildcard, in which case the SIP server derives it from external_host.
func mediaAddr(bind netip.Addr) netip.Addr {
	if bind.IsUnspecified() {
		return netip.Addr{}
	}
	return bind
}

// agentLink is what each call's agent is: the pipeline of agent.mode, or
// (mode sip) the SIP agent leg.
func agentLink(cfg Config, reg prometheus.Registerer, log *slog.Logger, twilio *agent.TwilioAPI) (agent.Pipeline, *sip.AgentLegConfig, error) {
	leg, err := agentLegConfig(cfg)
	if err != nil || leg != nil {
		return nil, leg, err
	}
	p, err := newPipeline(cfg.Agent, reg, log, twilio)
	return p, nil, err
}

// agentLegConfig is the SIP agent link of agent mode sip, nil in the
// other modes.
func agentLegConfig(cfg Config) (*sip.AgentLegConfig, error) {
	a := cfg.Agent
	if a.Mode != agentSIP {
		return nil, nil
	}
	uri, err := sip.ParseAgentURI(a.SIP.URI, a.SIP.Transport)
	if err != nil {
		return nil, fmt.Errorf("agent.sip.uri: %w", err)
	}
	return &sip.AgentLegConfig{
		URI:                  uri,
		Username:             a.SIP.Username,
		Password:             a.SIP.Password,
		SRTP:                 a.SIP.SRTP, // empty: media.srtp
		RingTimeout:          a.SIP.RingTimeout,
		SessionExpires:       a.SIP.SessionExpires,
		MaxDuration:          a.MaxDuration,
		FallbackTransferType: a.FallbackTransferType,
		FollowRefer:          a.SIP.FollowRefer,
	}, nil
}

// newTwilioAPI is the Twilio-compatible hang-up endpoint, nil when
// agent.twilio_api is not configured.
func newTwilioAPI(c TwilioAPIConfig, log *slog.Logger) (*agent.TwilioAPI, error) {
	if !c.Enabled() {
		return nil, nil
	}
	return agent.NewTwilioAPI(agent.TwilioAPIOptions{
		AccountSID: c.AccountSID, AuthToken: c.AuthToken, TransferType: c.TransferType, Logger: log,
	})
}

func newPipeline(c AgentConfig, reg prometheus.Registerer, log *slog.Logger, twilio *agent.TwilioAPI) (agent.Pipeline, error) {
	switch c.Mode {
	case "", agentLoopback:
		return agent.Loopback{MaxDuration: c.MaxDuration}, nil
	case agentWebSocket:
		format, err := agent.ParseFormat(c.Format)
		if err != nil {
			return nil, err
		}
		return &agent.WebSocket{
			URL:                  c.URL,
			Token:                c.Token,
			ConnectTimeout:       c.ConnectTimeout,
			Format:               format,
			FallbackTransferType: c.FallbackTransferType,
			MaxDuration:          c.MaxDuration,
			TwilioAPI:            twilio,
			Logger:               log,
			Metrics:              agent.NewMetrics(reg),
		}, nil
	default:
		return nil, fmt.Errorf("agent.mode %q is not supported by this build", c.Mode)
	}
}

package agent

import (
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// WebSocket is the pipeline for external agents: one WebSocket per call,
// speaking the Twilio Media Streams JSON events plus Handoff's extensions
// (docs/agent-protocol.md). Its fields are the link's configuration; the
// zero values of the optional ones are the documented defaults.
type WebSocket struct {
	// URL is the agent's ws:// or wss:// endpoint.
	URL string
	// Header is sent with every handshake (e.g. an API key header).
	Header http.Header
	// Token, if set, is sent as "Authorization: Bearer <Token>". It is
	// never logged.
	Token string
	// ConnectTimeout bounds the TCP, TLS and WebSocket handshakes (3s).
	ConnectTimeout time.Duration
	// Format is the audio format both ways (FormatMulaw).
	Format Format
	// FallbackTransferType is the outputContext.transferType when the agent
	// goes away without handoff.complete ("AGENT": a human takes over).
	FallbackTransferType string
	// MaxDuration, if positive, finishes a conversation still running after
	// it with the fallback and reason max_duration.
	MaxDuration time.Duration
	// PingInterval is how often Handoff pings the agent (5s); a ping not
	// answered within ResponseTimeout ends the conversation with the
	// fallback and reason agent_unresponsive. Negative disables pings.
	PingInterval time.Duration
	// ResponseTimeout bounds a pong's wait and any one write (10s).
	ResponseTimeout time.Duration
	// SendQueue is how many 20 ms frames of call audio may wait for the
	// socket (50, one second); beyond it the oldest are dropped.
	SendQueue int
	// PlayoutBuffer is how much agent audio may wait for the pacer (60s);
	// audio beyond it is dropped.
	PlayoutBuffer time.Duration
	// MaxMessageBytes is the largest agent message accepted (256 KiB);
	// larger ones are skipped and counted as malformed.
	MaxMessageBytes int64
	// TwilioAPI, if set, is the Twilio-compatible hang-up endpoint
	// (NewTwilioAPI): each session is listed there under its callSid for
	// its lifetime, and start.accountSid announces its account SID.
	TwilioAPI *TwilioAPI
	// HTTPClient dials the handshake; the default has no proxy and no
	// connection reuse.
	HTTPClient *http.Client
	Logger     *slog.Logger
	Metrics    *Metrics
}

// Defaults of the WebSocket fields.
const (
	DefaultConnectTimeout  = 3 * time.Second
	DefaultPingInterval    = 5 * time.Second
	DefaultResponseTimeout = 10 * time.Second
	DefaultSendQueue       = 50
	DefaultPlayoutBuffer   = 60 * time.Second
	DefaultMaxMessageBytes = 256 << 10
)

var defaultMetrics = sync.OnceValue(func() *Metrics { return NewMetrics(nil) })

func (w WebSocket) withDefaults() WebSocket {
	if w.ConnectTimeout <= 0 {
		w.ConnectTimeout = DefaultConnectTimeout
	}
	if w.Format == (Format{}) {
		w.Format = FormatMulaw
	}
	if w.FallbackTransferType == "" {
		w.FallbackTransferType = TransferAgent
	}
	if w.PingInterval == 0 {
		w.PingInterval = DefaultPingInterval
	}
	if w.ResponseTimeout <= 0 {
		w.ResponseTimeout = DefaultResponseTimeout
	}
	if w.SendQueue <= 0 {
		w.SendQueue = DefaultSendQueue
	}
	if w.PlayoutBuffer <= 0 {
		w.PlayoutBuffer = DefaultPlayoutBuffer
	}
	if w.MaxMessageBytes <= 0 {
		w.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if w.HTTPClient == nil {
		w.HTTPClient = defaultHTTPClient
	}
	if w.Logger == nil {
		w.Logger = slog.Default()
	}
	if w.Metrics == nil {
		w.Metrics = defaultMetrics()
	}
	return w
}

// accountSid is the start and stop messages' accountSid.
func (w WebSocket) accountSid() string {
	if w.TwilioAPI != nil {
		return w.TwilioAPI.opts.AccountSID
	}
	return defaultAccountSid
}

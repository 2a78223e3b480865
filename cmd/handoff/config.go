package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/control"
	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/sip"
	"github.com/handoff/handoff/transfer"
)

// Config is the whole process configuration. It is loaded from built-in
// defaults, then an optional YAML file, then HANDOFF_* environment
// variables (see Load). configs/handoff.yaml and docs/configuration.md
// document every key.
type Config struct {
	HTTP    HTTPConfig    `yaml:"http"`
	Auth    AuthConfig    `yaml:"auth"`
	Numbers NumbersConfig `yaml:"numbers"`
	Store   StoreConfig   `yaml:"store"`
	Node    NodeConfig    `yaml:"node"`
	SIP     SIPConfig     `yaml:"sip"`
	Media   MediaConfig   `yaml:"media"`
	Agent   AgentConfig   `yaml:"agent"`
	Log     LogConfig     `yaml:"log"`
	Drain   DrainConfig   `yaml:"drain"`
	// Webhooks is in webhooks.go.
	Webhooks WebhooksConfig `yaml:"webhooks"`
}

// HTTPConfig is the control-plane HTTP server.
type HTTPConfig struct {
	Listen       string    `yaml:"listen"`
	MaxBodyBytes int64     `yaml:"max_body_bytes"`
	RateLimit    float64   `yaml:"rate_limit"`
	RateBurst    int       `yaml:"rate_burst"`
	TLS          TLSConfig `yaml:"tls"`
}

// TLSConfig is a certificate to serve with; empty files turn TLS off.
type TLSConfig struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	MinVersion   string `yaml:"min_version"`
	ClientCAFile string `yaml:"client_ca_file"`
}

// Enabled reports whether a certificate is configured.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" }

// AuthConfig lists the API credentials.
type AuthConfig struct {
	Credentials []Credential `yaml:"credentials"`
}

// Credential is one API client (asapp-api-id / asapp-api-secret). Exactly
// one of Secret and SecretFile is set in the file; Load reads SecretFile
// into Secret. A ReadOnly credential may read its transfers but not create
// any (403). WebhookURL and WebhookSecret (or WebhookSecretFile) name the
// endpoint of the webhook events of the transfers it creates.
type Credential struct {
	ID                string `yaml:"id"`
	Secret            string `yaml:"secret,omitempty"`
	SecretFile        string `yaml:"secret_file,omitempty"`
	ReadOnly          bool   `yaml:"read_only,omitempty"`
	Admin             bool   `yaml:"admin,omitempty"`
	WebhookURL        string `yaml:"webhook_url,omitempty"`
	WebhookSecret     string `yaml:"webhook_secret,omitempty"`
	WebhookSecretFile string `yaml:"webhook_secret_file,omitempty"`
}

// apiCredentials is auth.credentials as the control API takes them.
func (c *Config) apiCredentials() []control.Credential {
	out := make([]control.Credential, 0, len(c.Auth.Credentials))
	for _, cr := range c.Auth.Credentials {
		out = append(out, control.Credential{ID: cr.ID, Secret: cr.Secret, ReadOnly: cr.ReadOnly, Admin: cr.Admin})
	}
	return out
}

// NumbersConfig is the temporary-number pool and the lease life-cycle.
type NumbersConfig struct {
	TTL        time.Duration       `yaml:"ttl"`
	Quarantine time.Duration       `yaml:"quarantine"`
	Pools      map[string][]string `yaml:"pools"`
}

// StoreConfig is the embedded store, or Redis when RedisURL is set.
type StoreConfig struct {
	Path        string        `yaml:"path"`
	RedisURL    string        `yaml:"redis_url"`
	RedisPrefix string        `yaml:"redis_prefix"`
	Retention   time.Duration `yaml:"retention"`
}

// NodeConfig names this instance among several sharing one Redis store.
type NodeConfig struct {
	ID        string        `yaml:"id"`
	Heartbeat time.Duration `yaml:"heartbeat"`
	Grace     time.Duration `yaml:"grace"`
}

// SIPConfig is the SIP side (used by the SIP server; see sip.go).
type SIPConfig struct {
	Listen         []string      `yaml:"listen"`
	ExternalHost   string        `yaml:"external_host"`
	TransferHost   string        `yaml:"transfer_host"`
	TrustedCIDRs   []string      `yaml:"trusted_cidrs"`
	Digest         DigestConfig  `yaml:"digest"`
	TransferHeader string        `yaml:"transfer_header"`
	AckTimeout     time.Duration `yaml:"ack_timeout"`
	RingingAfter   time.Duration `yaml:"ringing_after"`
	SessionMinSE   time.Duration `yaml:"session_min_se"`
	// TransactionLinger is how long a completed server transaction absorbs
	// retransmissions (restart only: it is process-wide in sipgo).
	TransactionLinger time.Duration `yaml:"transaction_linger"`
	TLS               TLSConfig     `yaml:"tls"`
	Flood             FloodConfig   `yaml:"flood"`
	Limits            LimitsConfig  `yaml:"limits"`
	Overload          ShedConfig    `yaml:"overload"`
	Return            ReturnConfig  `yaml:"return"`
	HeadersMode       HeadersConfig `yaml:"headers_mode"`
}

// FloodConfig limits out-of-dialog SIP requests per source IP.
type FloodConfig struct {
	Rate         float64 `yaml:"rate"`
	Burst        int     `yaml:"burst"`
	LimitTrusted bool    `yaml:"limit_trusted"`
}

// LimitsConfig is admission control's fixed limits (0 = unlimited); a
// trunk is a named group of source CIDRs that counts as one source.
type LimitsConfig struct {
	MaxCalls          int                 `yaml:"max_calls"`
	MaxCPS            float64             `yaml:"max_cps"`
	PerSourceMaxCalls int                 `yaml:"per_source_max_calls"`
	PerSourceMaxCPS   float64             `yaml:"per_source_max_cps"`
	Trunks            map[string][]string `yaml:"trunks"`
	RetryAfter        time.Duration       `yaml:"retry_after"`
}

// ShedConfig (sip.overload) sheds new INVITEs when the node falls behind.
type ShedConfig struct {
	MaxPending    int           `yaml:"max_pending"`
	MaxLatency    time.Duration `yaml:"max_latency"`
	MaxQueueDelay time.Duration `yaml:"max_queue_delay"`
}

// ReturnConfig tunes how calls are handed back by REFER and INVITE.
type ReturnConfig struct {
	ReferTimeout    time.Duration       `yaml:"refer_timeout"`
	RingTimeout     time.Duration       `yaml:"ring_timeout"`
	Fallback        transfer.ReturnType `yaml:"fallback"`
	ContextEncoding sip.ContextEncoding `yaml:"context_encoding"`
	MaxContextBytes int                 `yaml:"max_context_bytes"`
	UUIPassthrough  bool                `yaml:"uui_passthrough"`
}

// HeadersConfig is the API-less mode: transfers created from X-Handoff-
// (or X-GA-) headers of INVITEs to sip:<user>@external_host.
type HeadersConfig struct {
	Enabled   bool            `yaml:"enabled"`
	User      string          `yaml:"user"`
	Owner     string          `yaml:"owner"`
	ReturnURI string          `yaml:"return_uri"`
	Names     sip.HeaderNames `yaml:"names"`
}

// DigestConfig enables digest authentication of INVITEs when Users is not empty.
type DigestConfig struct {
	Realm string       `yaml:"realm"`
	Users []DigestUser `yaml:"users"`
}

// DigestUser is one digest account. Exactly one of Password and
// PasswordFile is set in the file; Load reads PasswordFile into Password.
type DigestUser struct {
	Username     string `yaml:"username"`
	Password     string `yaml:"password,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty"`
}

// MediaConfig is the RTP side.
type MediaConfig struct {
	RTPPorts   string         `yaml:"rtp_ports"`
	RTPTimeout time.Duration  `yaml:"rtp_timeout"`
	Bind       string         `yaml:"bind"`
	SRTP       sip.SRTPPolicy `yaml:"srtp"` // media encryption: off, optional or required
	// Codecs are the audio codecs offered and answered, in preference
	// order: G722, PCMU, PCMA (media.ParseCodecs).
	Codecs []string `yaml:"codecs"`
	// ComfortNoise offers and accepts RFC 3389 comfort noise.
	ComfortNoise bool `yaml:"comfort_noise"`
}

// codecs is media.codecs as the SIP server takes it (validated by Load).
func (m MediaConfig) codecs() []media.Codec {
	c, _ := media.ParseCodecs(m.Codecs)
	return c
}

// codecNames are the names of codecs, for the configuration's defaults.
func codecNames(codecs []media.Codec) []string {
	names := make([]string, len(codecs))
	for i, c := range codecs {
		names[i] = c.Name
	}
	return names
}

// AgentConfig selects the agent pipeline.
type AgentConfig struct {
	Mode        string        `yaml:"mode"` // agentLoopback, agentWebSocket or agentSIP
	MaxDuration time.Duration `yaml:"max_duration"`
	URL         string        `yaml:"url"`
	// Token is sent as "Authorization: Bearer <token>" (websocket mode).
	// Exactly one of Token and TokenFile is set in the file; Load reads
	// TokenFile into Token.
	Token                string        `yaml:"token,omitempty"`
	TokenFile            string        `yaml:"token_file,omitempty"`
	ConnectTimeout       time.Duration `yaml:"connect_timeout"`
	Format               string        `yaml:"format"`
	FallbackTransferType string        `yaml:"fallback_transfer_type"`
	// SIP is the SIP agent link (sip mode, docs/sip-agent.md).
	SIP AgentSIPConfig `yaml:"sip"`
	// TwilioAPI serves the Twilio-compatible hang-up (websocket mode).
	TwilioAPI TwilioAPIConfig `yaml:"twilio_api"`
}

// AgentSIPConfig is the SIP agent Handoff calls in agent mode sip. Exactly
// one of Password and PasswordFile is set with a Username; Load reads
// PasswordFile into Password.
type AgentSIPConfig struct {
	URI          string `yaml:"uri"`
	Transport    string `yaml:"transport"` // udp, tcp, tls; empty: the URI's
	Username     string `yaml:"username"`
	Password     string `yaml:"password,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty"`
	// SRTP is the agent leg's media policy; empty means media.srtp.
	SRTP           sip.SRTPPolicy `yaml:"srtp"`
	RingTimeout    time.Duration  `yaml:"ring_timeout"`
	SessionExpires time.Duration  `yaml:"session_expires"`
	FollowRefer    bool           `yaml:"follow_refer"`
}

// TwilioAPIConfig turns on the Twilio-compatible hang-up endpoint when
// AccountSID is set. Exactly one of AuthToken and AuthTokenFile is set;
// Load reads AuthTokenFile into AuthToken.
type TwilioAPIConfig struct {
	AccountSID    string `yaml:"account_sid"`
	AuthToken     string `yaml:"auth_token,omitempty"`
	AuthTokenFile string `yaml:"auth_token_file,omitempty"`
	TransferType  string `yaml:"transfer_type"`
}

// Enabled reports whether the endpoint is configured.
func (t TwilioAPIConfig) Enabled() bool { return t.AccountSID != "" || t.AuthToken != "" }

// LogConfig is the process log.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
	// SIPTrace logs every SIP message sent and received, with credentials
	// redacted (siptrace.go).
	SIPTrace bool `yaml:"sip_trace"`
}

// DrainConfig is graceful shutdown on SIGTERM/SIGINT.
type DrainConfig struct {
	Delay   time.Duration `yaml:"delay"`
	Timeout time.Duration `yaml:"timeout"`
}

// Built-in development credential, used when no credentials are configured.
const (
	devCredentialID     = "dev"
	devCredentialSecret = "dev-secret"
)

// Agent pipelines (agent.mode).
const (
	agentLoopback  = "loopback"
	agentWebSocket = "websocket"
	agentSIP       = "sip"
)

// Defaults returns the built-in configuration: everything on loopback, an
// embedded store under ./data, the loopback agent and one dev credential.
// Where a package has a default of its own, it is referenced, not retyped.
func Defaults() Config {
	tls := TLSConfig{MinVersion: "1.2"}
	return Config{
		HTTP: HTTPConfig{Listen: "127.0.0.1:8080", MaxBodyBytes: control.DefaultMaxBodyBytes,
			RateLimit: control.DefaultRateLimit, RateBurst: control.DefaultRateBurst, TLS: tls},
		Auth: AuthConfig{Credentials: []Credential{{ID: devCredentialID, Secret: devCredentialSecret}}},
		Numbers: NumbersConfig{TTL: transfer.DefaultTTL, Quarantine: 5 * time.Minute,
			Pools: map[string][]string{"US": {"+19995550100-+19995550199"}}},
		Store: StoreConfig{Path: "data/handoff.db", RedisPrefix: transfer.DefaultRedisPrefix, Retention: 30 * 24 * time.Hour},
		Node:  NodeConfig{Heartbeat: transfer.DefaultHeartbeatInterval, Grace: transfer.DefaultNodeGrace},
		SIP: SIPConfig{
			Listen:            []string{"udp://127.0.0.1:5060", "tcp://127.0.0.1:5060"},
			TrustedCIDRs:      []string{"127.0.0.0/8", "::1/128"},
			TransferHeader:    sip.DefaultTransferHeader,
			AckTimeout:        sip.DefaultAckTimeout,
			RingingAfter:      sip.DefaultRingingAfter,
			SessionMinSE:      sip.DefaultMinSE,
			TransactionLinger: sip.DefaultTransactionLinger,
			TLS:               tls,
			Flood:             FloodConfig{Rate: 20, Burst: 40},
			Limits:            LimitsConfig{RetryAfter: sip.DefaultLimitsRetryAfter},
			Overload:          ShedConfig{MaxPending: sip.DefaultMaxPending, MaxLatency: sip.DefaultMaxLatency, MaxQueueDelay: sip.DefaultMaxQueueDelay},
			Return: ReturnConfig{ReferTimeout: sip.DefaultReferTimeout, RingTimeout: sip.DefaultRingTimeout,
				Fallback: sip.DefaultFallback, ContextEncoding: sip.DefaultContextEncoding, MaxContextBytes: sip.DefaultMaxContextBytes,
				UUIPassthrough: sip.DefaultUUIPassthrough},
			HeadersMode: HeadersConfig{User: "agent", Owner: devCredentialID, Names: sip.NamesAuto},
		},
		Media: MediaConfig{RTPPorts: "20000-20999", RTPTimeout: 30 * time.Second, Bind: "127.0.0.1", SRTP: sip.DefaultSRTP,
			Codecs: codecNames(media.DefaultCodecs), ComfortNoise: true},
		Agent: AgentConfig{Mode: agentLoopback, MaxDuration: 5 * time.Minute, ConnectTimeout: agent.DefaultConnectTimeout,
			Format: agent.FormatMulaw.String(), FallbackTransferType: agent.TransferAgent,
			SIP:       AgentSIPConfig{RingTimeout: sip.DefaultAgentRingTimeout, SessionExpires: sip.DefaultAgentSessionExpires},
			TwilioAPI: TwilioAPIConfig{TransferType: agent.TransferSystem}},
		Log:      LogConfig{Level: "info", Format: "json"},
		Drain:    DrainConfig{Delay: 0, Timeout: 30 * time.Second},
		Webhooks: defaultWebhooks(),
	}
}

// Load builds the configuration: Defaults, then the YAML file at path (if
// path is not empty; unknown keys are errors), then environment overrides
// read through lookupEnv (os.LookupEnv in production; empty values are
// ignored). It reads secret files, derives sip.external_host when it is
// empty, and validates the result.
func Load(path string, lookupEnv func(string) (string, bool)) (Config, error) {
	cfg := Defaults()
	if path != "" {
		if err := cfg.loadFile(path); err != nil {
			return Config{}, err
		}
	}
	if lookupEnv != nil {
		if err := applyEnv(&cfg, lookupEnv); err != nil {
			return Config{}, err
		}
	}
	if err := cfg.resolve(); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func (c *Config) loadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	// Maps decode by merging into what is there; pools from the file must
	// replace the default pool, not add to it.
	defaultPools := c.Numbers.Pools
	c.Numbers.Pools = nil
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if c.Numbers.Pools == nil {
		c.Numbers.Pools = defaultPools
	}
	return nil
}

// resolve reads secret files and fills in derived values.
func (c *Config) resolve() error {
	// An empty list or map is the same as none ("users: []" == no users).
	for _, k := range configKeys(c) {
		if (k.field.Kind() == reflect.Slice || k.field.Kind() == reflect.Map) && k.field.Len() == 0 {
			k.field.SetZero()
		}
	}
	if err := c.readSecrets(); err != nil {
		return err
	}
	if c.Node.ID == "" {
		c.Node.ID, _ = os.Hostname()
	}
	c.SIP.ExternalHost = c.SIP.externalHost()
	return nil
}

// readSecrets reads every secret_file, password_file, token_file and
// webhook secret file.
func (c *Config) readSecrets() error {
	keys := keyNamesOf(c)
	var errs []error
	for i := range c.Auth.Credentials {
		cr := &c.Auth.Credentials[i]
		where := fmt.Sprintf("%s[%d] (%s)", keys.of(&c.Auth.Credentials), i, cr.ID)
		errs = append(errs, readSecret(where, "secret", &cr.Secret, "secret_file", cr.SecretFile),
			readSecret(where, "webhook_secret", &cr.WebhookSecret, "webhook_secret_file", cr.WebhookSecretFile))
	}
	for i := range c.SIP.Digest.Users {
		u := &c.SIP.Digest.Users[i]
		where := fmt.Sprintf("%s[%d] (%s)", keys.of(&c.SIP.Digest.Users), i, u.Username)
		errs = append(errs, readSecret(where, "password", &u.Password, "password_file", u.PasswordFile))
	}
	errs = append(errs, readSecret(keys.of(&c.Agent), "token", &c.Agent.Token, "token_file", c.Agent.TokenFile))
	a := &c.Agent
	errs = append(errs, readSecret(keys.of(&a.SIP), "password", &a.SIP.Password, "password_file", a.SIP.PasswordFile))
	errs = append(errs, readSecret(keys.of(&a.TwilioAPI), "auth_token", &a.TwilioAPI.AuthToken, "auth_token_file", a.TwilioAPI.AuthTokenFile))
	errs = append(errs, readSecret(keys.of(&c.Webhooks), "default_secret", &c.Webhooks.DefaultSecret, "default_secret_file", c.Webhooks.DefaultSecretFile))
	return errors.Join(errs...)
}

// readSecret sets *secret from the file named file, if any; where names
// the record in errors.
func readSecret(where, secretName string, secret *string, fileName, file string) error {
	switch {
	case file == "":
		return nil
	case *secret != "":
		return fmt.Errorf("%s: set %s or %s, not both", where, secretName, fileName)
	}
	s, err := readSecretFile(file)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", where, fileName, err)
	}
	*secret = s
	return nil
}

// externalHost is sip.external_host as advertised: the first listen
// address when it is empty, with the first listen port when it has none.
func (s *SIPConfig) externalHost() string {
	if len(s.Listen) == 0 {
		return s.ExternalHost
	}
	l, err := ParseSIPListen(s.Listen[0])
	if err != nil {
		return s.ExternalHost
	}
	if s.ExternalHost == "" {
		return deriveExternalHost(l.Addr)
	}
	if _, _, err := net.SplitHostPort(s.ExternalHost); err == nil {
		return s.ExternalHost
	}
	_, port, _ := net.SplitHostPort(l.Addr)
	return net.JoinHostPort(strings.Trim(s.ExternalHost, "[]"), port)
}

func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", errors.New("file is empty")
	}
	return s, nil
}

// deriveExternalHost advertises the listen address itself, or, when it is
// unspecified (0.0.0.0, ::), the first non-loopback IPv4 address of this
// host (127.0.0.1 if there is none).
func deriveExternalHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsUnspecified() {
		return addr
	}
	host = "127.0.0.1"
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && n.IP.IsGlobalUnicast() {
				host = n.IP.String()
				break
			}
		}
	}
	return net.JoinHostPort(host, port)
}

// SIPListeners returns sip.listen parsed (valid after Load).
func (c *Config) SIPListeners() []SIPListen {
	out := make([]SIPListen, 0, len(c.SIP.Listen))
	for _, s := range c.SIP.Listen {
		if l, err := ParseSIPListen(s); err == nil {
			out = append(out, l)
		}
	}
	return out
}

// TrustedPrefixes returns sip.trusted_cidrs parsed (valid after Load).
func (c *Config) TrustedPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(c.SIP.TrustedCIDRs))
	for _, s := range c.SIP.TrustedCIDRs {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// RTPPortRange returns media.rtp_ports as its first and last port (valid after Load).
func (c *Config) RTPPortRange() (first, last int) {
	first, last, _ = parsePortRange(c.Media.RTPPorts)
	return first, last
}

// TransferURI is the SIP URI that identifies transfer id: the id is the user
// part and sip.external_host (with its port) the host part.
func (c *Config) TransferURI(id string) string {
	if c.SIP.TransferHost != "" {
		// Several nodes: the dispatcher's address, so any live node answers.
		return "sip:" + id + "@" + c.SIP.TransferHost
	}
	return "sip:" + id + "@" + c.SIP.ExternalHost
}

// UsesDevCredential reports whether the built-in development credential is
// configured, which start-up warns about.
func (c *Config) UsesDevCredential() bool {
	for _, cr := range c.Auth.Credentials {
		if cr.ID == devCredentialID && cr.Secret == devCredentialSecret {
			return true
		}
	}
	return false
}

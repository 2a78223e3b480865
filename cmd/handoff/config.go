package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/control"
	"github.com/handoff/handoff/transfer"
	"go.yaml.in/yaml/v3"
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
// any (403).
type Credential struct {
	ID         string `yaml:"id"`
	Secret     string `yaml:"secret,omitempty"`
	SecretFile string `yaml:"secret_file,omitempty"`
	ReadOnly   bool   `yaml:"read_only,omitempty"`
	Admin      bool   `yaml:"admin,omitempty"`
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
	SessionMinSE   time.Duration `yaml:"session_min_se"`
	TLS            TLSConfig     `yaml:"tls"`
	Flood          FloodConfig   `yaml:"flood"`
	Return         ReturnConfig  `yaml:"return"`
	HeadersMode    HeadersConfig `yaml:"headers_mode"`
}

// FloodConfig limits out-of-dialog SIP requests per source IP.
type FloodConfig struct {
	Rate         float64 `yaml:"rate"`
	Burst        int     `yaml:"burst"`
	LimitTrusted bool    `yaml:"limit_trusted"`
}

// ReturnConfig tunes how calls are handed back by REFER and INVITE.
type ReturnConfig struct {
	ReferTimeout    time.Duration `yaml:"refer_timeout"`
	RingTimeout     time.Duration `yaml:"ring_timeout"`
	Fallback        string        `yaml:"fallback"`
	ContextEncoding string        `yaml:"context_encoding"`
	MaxContextBytes int           `yaml:"max_context_bytes"`
}

// HeadersConfig is the API-less mode: transfers created from X-Handoff-
// headers of INVITEs to sip:<user>@external_host.
type HeadersConfig struct {
	Enabled   bool   `yaml:"enabled"`
	User      string `yaml:"user"`
	Owner     string `yaml:"owner"`
	ReturnURI string `yaml:"return_uri"`
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
	RTPPorts   string        `yaml:"rtp_ports"`
	RTPTimeout time.Duration `yaml:"rtp_timeout"`
	Bind       string        `yaml:"bind"`
	// SRTP is the media encryption policy: off, optional or required.
	SRTP string `yaml:"srtp"`
}

// AgentConfig selects the agent pipeline.
type AgentConfig struct {
	Mode        string        `yaml:"mode"`
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
}

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

// Defaults returns the built-in configuration: everything on loopback, an
// embedded store under ./data, the loopback agent and one dev credential.
func Defaults() Config {
	return Config{
		HTTP: HTTPConfig{
			Listen:       "127.0.0.1:8080",
			MaxBodyBytes: 64 << 10,
			RateLimit:    50,
			RateBurst:    100,
			TLS:          TLSConfig{MinVersion: "1.2"},
		},
		Auth: AuthConfig{Credentials: []Credential{{ID: devCredentialID, Secret: devCredentialSecret}}},
		Numbers: NumbersConfig{
			TTL:        10 * time.Minute,
			Quarantine: 5 * time.Minute,
			Pools:      map[string][]string{"US": {"+19995550100-+19995550199"}},
		},
		Store: StoreConfig{Path: "data/handoff.db", RedisPrefix: transfer.DefaultRedisPrefix, Retention: 30 * 24 * time.Hour},
		Node:  NodeConfig{Heartbeat: transfer.DefaultHeartbeatInterval, Grace: transfer.DefaultNodeGrace},
		SIP: SIPConfig{
			Listen:         []string{"udp://127.0.0.1:5060", "tcp://127.0.0.1:5060"},
			TrustedCIDRs:   []string{"127.0.0.0/8", "::1/128"},
			TransferHeader: "X-Call-Transfer-Id",
			AckTimeout:     32 * time.Second,
			SessionMinSE:   90 * time.Second,
			TLS:            TLSConfig{MinVersion: "1.2"},
			Flood:          FloodConfig{Rate: 20, Burst: 40},
			Return: ReturnConfig{
				ReferTimeout:    30 * time.Second,
				RingTimeout:     60 * time.Second,
				Fallback:        "BYE",
				ContextEncoding: "headers",
				MaxContextBytes: 1024,
			},
			HeadersMode: HeadersConfig{User: "agent", Owner: devCredentialID},
		},
		Media: MediaConfig{
			RTPPorts:   "20000-20999",
			RTPTimeout: 30 * time.Second,
			Bind:       "127.0.0.1",
			SRTP:       "optional",
		},
		Agent: AgentConfig{Mode: "loopback", MaxDuration: 5 * time.Minute, ConnectTimeout: 3 * time.Second,
			Format: "mulaw", FallbackTransferType: "AGENT"},
		Log:   LogConfig{Level: "info", Format: "json"},
		Drain: DrainConfig{Delay: 0, Timeout: 30 * time.Second},
	}
}

// envPrefix starts every environment override: HANDOFF_<SECTION>_<KEY>.
const envPrefix = "HANDOFF_"

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

// envVar is one leaf key of the configuration and its environment variable.
type envVar struct {
	Key   string // dotted YAML key, e.g. "numbers.ttl"
	Env   string // e.g. "HANDOFF_NUMBERS_TTL"
	field reflect.Value
}

// configKeys lists every leaf key of cfg in declaration order. Lists of
// records (auth.credentials, sip.digest.users) are one key each.
func configKeys(cfg *Config) []envVar {
	var out []envVar
	var walk func(v reflect.Value, path []string)
	walk = func(v reflect.Value, path []string) {
		t := v.Type()
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			p := append(slices.Clone(path), name)
			f := v.Field(i)
			if f.Kind() == reflect.Struct && f.Type() != reflect.TypeFor[time.Duration]() {
				walk(f, p)
				continue
			}
			out = append(out, envVar{
				Key:   strings.Join(p, "."),
				Env:   envPrefix + strings.ToUpper(strings.Join(p, "_")),
				field: f,
			})
		}
	}
	walk(reflect.ValueOf(cfg).Elem(), nil)
	return out
}

// applyEnv overrides keys from the environment. Formats: durations as Go
// durations ("90s"), lists comma-separated, auth.credentials as
// "id:secret,id2:secret2", sip.digest.users as "user:password,...", and
// numbers.pools as "US=+1...-+1...,+1...;GB=+44...".
func applyEnv(cfg *Config, lookupEnv func(string) (string, bool)) error {
	var errs []error
	for _, k := range configKeys(cfg) {
		raw, ok := lookupEnv(k.Env)
		raw = strings.TrimSpace(raw)
		if !ok || raw == "" {
			continue
		}
		if err := setFromEnv(k.field, raw); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", k.Env, k.Key, err))
		}
	}
	return errors.Join(errs...)
}

func setFromEnv(f reflect.Value, raw string) error {
	switch p := f.Addr().Interface().(type) {
	case *string:
		*p = raw
	case *time.Duration:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("%q is not a duration (use e.g. 90s, 10m)", raw)
		}
		*p = d
	case *int:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return fmt.Errorf("%q is not an integer", raw)
		}
		*p = n
	case *int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", raw)
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%q is not a boolean (use true or false)", raw)
		}
		*p = b
	case *float64:
		n, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", raw)
		}
		*p = n
	case *[]string:
		*p = splitList(raw, ",")
	case *[]Credential:
		var creds []Credential
		for _, item := range splitList(raw, ",") {
			id, secret, ok := strings.Cut(item, ":")
			if !ok {
				return errors.New("want comma-separated id:secret pairs")
			}
			creds = append(creds, Credential{ID: id, Secret: secret})
		}
		*p = creds
	case *[]DigestUser:
		var users []DigestUser
		for _, item := range splitList(raw, ",") {
			u, pw, ok := strings.Cut(item, ":")
			if !ok {
				return errors.New("want comma-separated username:password pairs")
			}
			users = append(users, DigestUser{Username: u, Password: pw})
		}
		*p = users
	case *map[string][]string:
		pools := map[string][]string{}
		for _, item := range splitList(raw, ";") {
			cc, entries, ok := strings.Cut(item, "=")
			if !ok {
				return fmt.Errorf("%q: want COUNTRY=ENTRY[,ENTRY] (numbers or +A-+B ranges)", item)
			}
			pools[strings.TrimSpace(cc)] = append(pools[strings.TrimSpace(cc)], splitList(entries, ",")...)
		}
		*p = pools
	default:
		return fmt.Errorf("no environment format for %s", f.Type())
	}
	return nil
}

func splitList(s, sep string) []string {
	var out []string
	for _, part := range strings.Split(s, sep) {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// resolve reads secret files and fills in derived values.
func (c *Config) resolve() error {
	// An empty list or map is the same as none ("users: []" == no users).
	for _, k := range configKeys(c) {
		if (k.field.Kind() == reflect.Slice || k.field.Kind() == reflect.Map) && k.field.Len() == 0 {
			k.field.SetZero()
		}
	}
	var errs []error
	for i := range c.Auth.Credentials {
		cr := &c.Auth.Credentials[i]
		if cr.SecretFile == "" {
			continue
		}
		if cr.Secret != "" {
			errs = append(errs, fmt.Errorf("auth.credentials[%d] (%s): set secret or secret_file, not both", i, cr.ID))
			continue
		}
		s, err := readSecretFile(cr.SecretFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("auth.credentials[%d] (%s): secret_file: %w", i, cr.ID, err))
			continue
		}
		cr.Secret = s
	}
	for i := range c.SIP.Digest.Users {
		u := &c.SIP.Digest.Users[i]
		if u.PasswordFile == "" {
			continue
		}
		if u.Password != "" {
			errs = append(errs, fmt.Errorf("sip.digest.users[%d] (%s): set password or password_file, not both", i, u.Username))
			continue
		}
		s, err := readSecretFile(u.PasswordFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("sip.digest.users[%d] (%s): password_file: %w", i, u.Username, err))
			continue
		}
		u.Password = s
	}
	if c.Agent.TokenFile != "" {
		if c.Agent.Token != "" {
			errs = append(errs, errors.New("agent: set token or token_file, not both"))
		} else if tok, err := readSecretFile(c.Agent.TokenFile); err != nil {
			errs = append(errs, fmt.Errorf("agent.token_file: %w", err))
		} else {
			c.Agent.Token = tok
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if c.Node.ID == "" {
		c.Node.ID, _ = os.Hostname()
	}
	if c.SIP.ExternalHost == "" && len(c.SIP.Listen) > 0 {
		if l, err := ParseSIPListen(c.SIP.Listen[0]); err == nil {
			c.SIP.ExternalHost = deriveExternalHost(l.Addr)
		}
	} else if c.SIP.ExternalHost != "" && len(c.SIP.Listen) > 0 {
		// A host without a port advertises the first listen port.
		if _, _, err := net.SplitHostPort(c.SIP.ExternalHost); err != nil {
			if l, err := ParseSIPListen(c.SIP.Listen[0]); err == nil {
				_, port, _ := net.SplitHostPort(l.Addr)
				c.SIP.ExternalHost = net.JoinHostPort(strings.Trim(c.SIP.ExternalHost, "[]"), port)
			}
		}
	}
	return nil
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

// SIPListen is one parsed sip.listen entry.
type SIPListen struct {
	Network string // "udp" or "tcp"
	Addr    string // host:port
}

// ParseSIPListen parses "udp://host:port" or "tcp://host:port".
func ParseSIPListen(s string) (SIPListen, error) {
	network, addr, ok := strings.Cut(s, "://")
	if !ok || (network != "udp" && network != "tcp" && network != "tls") {
		return SIPListen{}, fmt.Errorf("%q: want udp://host:port, tcp://host:port or tls://host:port", s)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return SIPListen{}, fmt.Errorf("%q: %v", s, err)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return SIPListen{}, fmt.Errorf("%q: host must be an IP address", s)
	}
	if _, err := parsePort(port); err != nil {
		return SIPListen{}, fmt.Errorf("%q: %v", s, err)
	}
	return SIPListen{Network: network, Addr: addr}, nil
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

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	return n, nil
}

func parsePortRange(s string) (int, int, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q: want FIRST-LAST, e.g. 20000-20999", s)
	}
	first, err1 := parsePort(strings.TrimSpace(a))
	last, err2 := parsePort(strings.TrimSpace(b))
	switch {
	case err1 != nil || err2 != nil:
		return 0, 0, fmt.Errorf("%q: want FIRST-LAST, e.g. 20000-20999", s)
	case first < 1024:
		return 0, 0, fmt.Errorf("%q: ports below 1024 are not allowed", s)
	case last < first+1:
		return 0, 0, fmt.Errorf("%q: the range must hold at least two ports, first below last", s)
	}
	return first, last, nil
}

// Validate checks every key and reports all problems at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			bad(key, "must be a positive duration, got %s", d)
		}
	}

	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		bad("http.listen", "%q: want host:port (%v)", c.HTTP.Listen, err)
	}
	if c.HTTP.MaxBodyBytes <= 0 {
		bad("http.max_body_bytes", "must be positive, got %d", c.HTTP.MaxBodyBytes)
	}
	if c.HTTP.RateLimit == 0 {
		bad("http.rate_limit", "must be positive (requests per second) or negative (no limit), not 0")
	}
	if c.HTTP.RateBurst <= 0 {
		bad("http.rate_burst", "must be positive, got %d", c.HTTP.RateBurst)
	}

	if len(c.Auth.Credentials) == 0 {
		bad("auth.credentials", "at least one {id, secret} credential is required")
	}
	seen := map[string]bool{}
	for i, cr := range c.Auth.Credentials {
		key := fmt.Sprintf("auth.credentials[%d]", i)
		switch {
		case cr.ID == "":
			bad(key, "id is empty")
		case cr.Secret == "":
			bad(key, "credential %q has no secret (set secret or secret_file)", cr.ID)
		case seen[cr.ID]:
			bad(key, "id %q is configured twice", cr.ID)
		}
		seen[cr.ID] = true
	}

	positive("numbers.ttl", c.Numbers.TTL)
	if c.Numbers.Quarantine < 0 {
		bad("numbers.quarantine", "must not be negative, got %s", c.Numbers.Quarantine)
	}
	if _, err := transfer.ExpandPools(c.Numbers.Pools); err != nil {
		errs = append(errs, err) // already names numbers.pools
	}

	if c.Store.Path == "" {
		bad("store.path", "is empty")
	}
	if c.Store.RedisURL != "" {
		if u, err := url.Parse(c.Store.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			bad("store.redis_url", "want redis://[user:password@]host:port[/db], rediss://... or unix:///path")
		}
	}
	if c.Store.RedisPrefix == "" {
		bad("store.redis_prefix", "is empty")
	}
	if c.Node.ID == "" || strings.ContainsAny(c.Node.ID, " \t\r\n") {
		bad("node.id", "%q: want a non-empty name without spaces (default: the host name)", c.Node.ID)
	}
	positive("node.heartbeat", c.Node.Heartbeat)
	positive("node.grace", c.Node.Grace)

	if len(c.SIP.Listen) == 0 {
		bad("sip.listen", "at least one udp:// or tcp:// address is required")
	}
	for i, s := range c.SIP.Listen {
		if _, err := ParseSIPListen(s); err != nil {
			bad(fmt.Sprintf("sip.listen[%d]", i), "%v", err)
		}
	}
	if host, port, err := net.SplitHostPort(c.SIP.ExternalHost); err != nil || host == "" {
		bad("sip.external_host", "%q: want host[:port]", c.SIP.ExternalHost)
	} else if _, err := parsePort(port); err != nil {
		bad("sip.external_host", "%v", err)
	} else if strings.ContainsAny(host, "@;?<> ") {
		bad("sip.external_host", "%q is not a host name or IP address", host)
	}
	if h := c.SIP.TransferHost; h != "" && (strings.ContainsAny(h, "@;?<> /") || strings.HasPrefix(h, "sip:")) {
		bad("sip.transfer_host", "%q: want host[:port], e.g. sip-proxy.example.com:5060", h)
	}
	for i, s := range c.SIP.TrustedCIDRs {
		if _, err := netip.ParsePrefix(s); err != nil {
			bad(fmt.Sprintf("sip.trusted_cidrs[%d]", i), "%q is not a CIDR prefix (e.g. 10.0.0.0/8)", s)
		}
	}
	if len(c.SIP.Digest.Users) > 0 && c.SIP.Digest.Realm == "" {
		bad("sip.digest.realm", "is required when sip.digest.users is set")
	}
	for i, u := range c.SIP.Digest.Users {
		if u.Username == "" || u.Password == "" {
			bad(fmt.Sprintf("sip.digest.users[%d]", i), "username and password (or password_file) are required")
		}
	}
	if len(c.SIP.TrustedCIDRs) == 0 && len(c.SIP.Digest.Users) == 0 {
		bad("sip.trusted_cidrs", "no trusted CIDRs and no digest users: no INVITE could ever be accepted")
	}
	if !validHeaderName(c.SIP.TransferHeader) {
		bad("sip.transfer_header", "%q is not a SIP header name", c.SIP.TransferHeader)
	}
	positive("sip.ack_timeout", c.SIP.AckTimeout)
	if c.Store.Retention < 0 {
		bad("store.retention", "must not be negative (0 keeps ended transfers forever), got %s", c.Store.Retention)
	}
	checkTLS := func(key string, t TLSConfig) {
		if (t.CertFile == "") != (t.KeyFile == "") {
			bad(key+".cert_file", "cert_file and key_file go together")
		}
		if t.MinVersion != "1.2" && t.MinVersion != "1.3" {
			bad(key+".min_version", "%q: want 1.2 or 1.3", t.MinVersion)
		}
		if t.ClientCAFile != "" && t.CertFile == "" {
			bad(key+".client_ca_file", "mutual TLS needs cert_file and key_file too")
		}
	}
	checkTLS("http.tls", c.HTTP.TLS)
	checkTLS("sip.tls", c.SIP.TLS)
	for _, l := range c.SIP.Listen {
		if strings.HasPrefix(l, "tls://") && !c.SIP.TLS.Enabled() {
			bad("sip.listen", "%q needs sip.tls.cert_file and key_file", l)
		}
	}
	if c.SIP.Flood.Rate < 0 || c.SIP.Flood.Burst < 0 {
		bad("sip.flood", "rate and burst must not be negative")
	}
	if c.SIP.SessionMinSE < 90*time.Second {
		bad("sip.session_min_se", "must be at least 90s (RFC 4028), got %s", c.SIP.SessionMinSE)
	}
	positive("sip.return.refer_timeout", c.SIP.Return.ReferTimeout)
	positive("sip.return.ring_timeout", c.SIP.Return.RingTimeout)
	if f := c.SIP.Return.Fallback; f != "BYE" && f != "REFER" {
		bad("sip.return.fallback", "%q: want BYE or REFER", f)
	}
	if e := c.SIP.Return.ContextEncoding; e != "headers" && e != "params" {
		bad("sip.return.context_encoding", "%q: want headers or params", e)
	}
	if n := c.SIP.Return.MaxContextBytes; n < 64 || n > 4096 {
		bad("sip.return.max_context_bytes", "must be between 64 and 4096, got %d", n)
	}
	if h := c.SIP.HeadersMode; h.Enabled {
		if h.User == "" {
			bad("sip.headers_mode.user", "is required when sip.headers_mode.enabled is true")
		}
		known := false
		for _, cr := range c.Auth.Credentials {
			known = known || cr.ID == h.Owner
		}
		if !known {
			bad("sip.headers_mode.owner", "%q is not an auth.credentials id", h.Owner)
		}
	}

	if _, _, err := parsePortRange(c.Media.RTPPorts); err != nil {
		bad("media.rtp_ports", "%v", err)
	}
	positive("media.rtp_timeout", c.Media.RTPTimeout)
	if _, err := netip.ParseAddr(c.Media.Bind); err != nil {
		bad("media.bind", "%q is not an IP address", c.Media.Bind)
	}
	switch c.Media.SRTP {
	case "off", "optional", "required":
	default:
		bad("media.srtp", "%q is not off, optional or required", c.Media.SRTP)
	}

	switch c.Agent.Mode {
	case "loopback":
	case "websocket":
		u, err := url.Parse(c.Agent.URL)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			bad("agent.url", "%q: a ws:// or wss:// URL is required with agent.mode websocket", redactedURL(c.Agent.URL))
		}
		positive("agent.connect_timeout", c.Agent.ConnectTimeout)
		if _, err := agent.ParseFormat(c.Agent.Format); err != nil {
			bad("agent.format", "%q: want mulaw, l16-8000 or l16-16000", c.Agent.Format)
		}
		if c.Agent.FallbackTransferType == "" {
			bad("agent.fallback_transfer_type", "is empty (AGENT hands the caller to a person)")
		}
	default:
		bad("agent.mode", "%q: want loopback or websocket", c.Agent.Mode)
	}
	positive("agent.max_duration", c.Agent.MaxDuration)

	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "%q: want json or text", c.Log.Format)
	}

	if c.Drain.Delay < 0 {
		bad("drain.delay", "must not be negative, got %s", c.Drain.Delay)
	}
	positive("drain.timeout", c.Drain.Timeout)
	return errors.Join(errs...)
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-.!%*_+`'~", r)) {
			return false
		}
	}
	return true
}

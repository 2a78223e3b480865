package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/sip"
	"github.com/handoff/handoff/transfer"
)

// rfc4028MinSE is the smallest Min-SE RFC 4028 allows.
const rfc4028MinSE = 90 * time.Second

// validation collects the problems of one Config, each under the dotted
// key of the field it is about (taken from the YAML tags).
type validation struct {
	keys keyNames
	errs []error
}

// bad records a problem with field, a pointer into the Config.
func (v *validation) bad(field any, format string, args ...any) {
	v.badKey(v.keys.of(field), format, args...)
}

// badAt records a problem with item i of the list field.
func (v *validation) badAt(field any, i int, format string, args ...any) {
	v.badKey(fmt.Sprintf("%s[%d]", v.keys.of(field), i), format, args...)
}

func (v *validation) badKey(key, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

func (v *validation) positive(d *time.Duration) {
	if *d <= 0 {
		v.bad(d, "must be a positive duration, got %s", *d)
	}
}

func (v *validation) notNegative(d *time.Duration, note string) {
	if *d < 0 {
		v.bad(d, "must not be negative%s, got %s", note, *d)
	}
}

// Validate checks every key and reports all problems at once.
func (c *Config) Validate() error {
	v := &validation{keys: keyNamesOf(c)}
	c.HTTP.validate(v)
	c.Auth.validate(v)
	c.Numbers.validate(v)
	c.Store.validate(v)
	c.Node.validate(v)
	c.SIP.validate(v, &c.Auth)
	c.Media.validate(v)
	c.Agent.validate(v)
	c.Log.validate(v)
	v.notNegative(&c.Drain.Delay, "")
	v.positive(&c.Drain.Timeout)
	c.Webhooks.validate(v, &c.Auth)
	return errors.Join(v.errs...)
}

func (h *HTTPConfig) validate(v *validation) {
	if _, _, err := net.SplitHostPort(h.Listen); err != nil {
		v.bad(&h.Listen, "%q: want host:port (%v)", h.Listen, err)
	}
	if h.MaxBodyBytes <= 0 {
		v.bad(&h.MaxBodyBytes, "must be positive, got %d", h.MaxBodyBytes)
	}
	if h.RateLimit == 0 {
		v.bad(&h.RateLimit, "must be positive (requests per second) or negative (no limit), not 0")
	}
	if h.RateBurst <= 0 {
		v.bad(&h.RateBurst, "must be positive, got %d", h.RateBurst)
	}
	h.TLS.validate(v)
}

func (t *TLSConfig) validate(v *validation) {
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.bad(&t.CertFile, "cert_file and key_file go together")
	}
	if t.MinVersion != "1.2" && t.MinVersion != "1.3" {
		v.bad(&t.MinVersion, "%q: want 1.2 or 1.3", t.MinVersion)
	}
	if t.ClientCAFile != "" && t.CertFile == "" {
		v.bad(&t.ClientCAFile, "mutual TLS needs cert_file and key_file too")
	}
}

func (a *AuthConfig) validate(v *validation) {
	if len(a.Credentials) == 0 {
		v.bad(&a.Credentials, "at least one {id, secret} credential is required")
	}
	seen := map[string]bool{}
	for i, cr := range a.Credentials {
		switch {
		case cr.ID == "":
			v.badAt(&a.Credentials, i, "id is empty")
		case cr.Secret == "":
			v.badAt(&a.Credentials, i, "credential %q has no secret (set secret or secret_file)", cr.ID)
		case seen[cr.ID]:
			v.badAt(&a.Credentials, i, "id %q is configured twice", cr.ID)
		}
		seen[cr.ID] = true
	}
}

func (n *NumbersConfig) validate(v *validation) {
	v.positive(&n.TTL)
	v.notNegative(&n.Quarantine, "")
	if _, err := transfer.ExpandPools(n.Pools); err != nil {
		v.errs = append(v.errs, err) // already names numbers.pools
	}
}

func (s *StoreConfig) validate(v *validation) {
	if s.Path == "" {
		v.bad(&s.Path, "is empty")
	}
	if s.RedisURL != "" {
		if u, err := url.Parse(s.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			v.bad(&s.RedisURL, "want redis://[user:password@]host:port[/db], rediss://... or unix:///path")
		}
	}
	if s.RedisPrefix == "" {
		v.bad(&s.RedisPrefix, "is empty")
	}
	v.notNegative(&s.Retention, " (0 keeps ended transfers forever)")
}

func (n *NodeConfig) validate(v *validation) {
	if n.ID == "" || strings.ContainsAny(n.ID, " \t\r\n") {
		v.bad(&n.ID, "%q: want a non-empty name without spaces (default: the host name)", n.ID)
	}
	v.positive(&n.Heartbeat)
	v.positive(&n.Grace)
}

func (s *SIPConfig) validate(v *validation, auth *AuthConfig) {
	s.validateListen(v)
	s.validateHosts(v)
	s.validateAdmission(v)
	s.validateLimits(v)
	if !validHeaderName(s.TransferHeader) {
		v.bad(&s.TransferHeader, "%q is not a SIP header name", s.TransferHeader)
	}
	v.positive(&s.AckTimeout)
	v.positive(&s.TransactionLinger)
	if s.SessionMinSE < rfc4028MinSE {
		v.bad(&s.SessionMinSE, "must be at least 90s (RFC 4028), got %s", s.SessionMinSE)
	}
	s.TLS.validate(v)
	if s.Flood.Rate < 0 || s.Flood.Burst < 0 {
		v.bad(&s.Flood, "rate and burst must not be negative")
	}
	s.Return.validate(v)
	s.HeadersMode.validate(v, auth)
}

func (s *SIPConfig) validateListen(v *validation) {
	if len(s.Listen) == 0 {
		v.bad(&s.Listen, "at least one udp:// or tcp:// address is required")
	}
	for i, l := range s.Listen {
		if _, err := ParseSIPListen(l); err != nil {
			v.badAt(&s.Listen, i, "%v", err)
		}
		if strings.HasPrefix(l, "tls://") && !s.TLS.Enabled() {
			v.bad(&s.Listen, "%q needs %s and key_file", l, v.keys.of(&s.TLS.CertFile))
		}
	}
}

func (s *SIPConfig) validateHosts(v *validation) {
	if host, port, err := net.SplitHostPort(s.ExternalHost); err != nil || host == "" {
		v.bad(&s.ExternalHost, "%q: want host[:port]", s.ExternalHost)
	} else if _, err := parsePort(port); err != nil {
		v.bad(&s.ExternalHost, "%v", err)
	} else if strings.ContainsAny(host, "@;?<> ") {
		v.bad(&s.ExternalHost, "%q is not a host name or IP address", host)
	}
	if h := s.TransferHost; h != "" && (strings.ContainsAny(h, "@;?<> /") || strings.HasPrefix(h, "sip:")) {
		v.bad(&s.TransferHost, "%q: want host[:port], e.g. sip-proxy.example.com:5060", h)
	}
}

// validateAdmission checks who may send INVITEs: trusted networks and
// digest accounts.
func (s *SIPConfig) validateAdmission(v *validation) {
	for i, p := range s.TrustedCIDRs {
		if _, err := netip.ParsePrefix(p); err != nil {
			v.badAt(&s.TrustedCIDRs, i, "%q is not a CIDR prefix (e.g. 10.0.0.0/8)", p)
		}
	}
	d := &s.Digest
	if len(d.Users) > 0 && d.Realm == "" {
		v.bad(&d.Realm, "is required when %s is set", v.keys.of(&d.Users))
	}
	for i, u := range d.Users {
		if u.Username == "" || u.Password == "" {
			v.badAt(&d.Users, i, "username and password (or password_file) are required")
		}
	}
	if len(s.TrustedCIDRs) == 0 && len(d.Users) == 0 {
		v.bad(&s.TrustedCIDRs, "no trusted CIDRs and no digest users: no INVITE could ever be accepted")
	}
}

func (r *ReturnConfig) validate(v *validation) {
	v.positive(&r.ReferTimeout)
	v.positive(&r.RingTimeout)
	if r.Fallback != transfer.ReturnBye && r.Fallback != transfer.ReturnRefer {
		v.bad(&r.Fallback, "%q: want %s or %s", r.Fallback, transfer.ReturnBye, transfer.ReturnRefer)
	}
	if _, err := sip.ParseContextEncoding(string(r.ContextEncoding)); err != nil {
		v.bad(&r.ContextEncoding, "%v", err)
	}
	if n := r.MaxContextBytes; n < 64 || n > 4096 {
		v.bad(&r.MaxContextBytes, "must be between 64 and 4096, got %d", n)
	}
}

func (h *HeadersConfig) validate(v *validation, auth *AuthConfig) {
	if _, err := sip.ParseHeaderNames(string(h.Names)); err != nil {
		v.bad(&h.Names, "%v", err)
	}
	if !h.Enabled {
		return
	}
	if h.User == "" {
		v.bad(&h.User, "is required when %s is true", v.keys.of(&h.Enabled))
	}
	known := false
	for _, cr := range auth.Credentials {
		known = known || cr.ID == h.Owner
	}
	if !known {
		v.bad(&h.Owner, "%q is not an %s id", h.Owner, v.keys.of(&auth.Credentials))
	}
}

func (m *MediaConfig) validate(v *validation) {
	if _, _, err := parsePortRange(m.RTPPorts); err != nil {
		v.bad(&m.RTPPorts, "%v", err)
	}
	v.positive(&m.RTPTimeout)
	if _, err := netip.ParseAddr(m.Bind); err != nil {
		v.bad(&m.Bind, "%q is not an IP address", m.Bind)
	}
	if _, err := sip.ParseSRTPPolicy(string(m.SRTP)); err != nil {
		v.bad(&m.SRTP, "%v", err)
	}
	if _, err := media.ParseCodecs(m.Codecs); err != nil {
		v.bad(&m.Codecs, "%v", err)
	}
}

func (a *AgentConfig) validate(v *validation) {
	switch a.Mode {
	case agentLoopback:
	case agentWebSocket:
		u, err := url.Parse(a.URL)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			v.bad(&a.URL, "%q: a ws:// or wss:// URL is required with %s %s", redactedURL(a.URL), v.keys.of(&a.Mode), agentWebSocket)
		}
		v.positive(&a.ConnectTimeout)
		if _, err := agent.ParseFormat(a.Format); err != nil {
			v.bad(&a.Format, "%q: want mulaw, l16-8000 or l16-16000", a.Format)
		}
	case agentSIP:
		a.SIP.validate(v, &a.Mode)
	default:
		v.bad(&a.Mode, "%q: want %s, %s or %s", a.Mode, agentLoopback, agentWebSocket, agentSIP)
	}
	if a.Mode != agentLoopback && a.FallbackTransferType == "" {
		v.bad(&a.FallbackTransferType, "is empty (%s hands the caller to a person)", agent.TransferAgent)
	}
	v.positive(&a.MaxDuration)
	a.TwilioAPI.validate(v, a)
}

func (s *AgentSIPConfig) validate(v *validation, mode *string) {
	if s.URI == "" {
		v.bad(&s.URI, "a sip: or sips: URI is required with %s %s", v.keys.of(mode), agentSIP)
	} else if _, err := sip.ParseAgentURI(s.URI, s.Transport); err != nil {
		v.bad(&s.URI, "%v", err)
	}
	if (s.Username == "") != (s.Password == "") {
		v.bad(&s.Username, "username and password (or password_file) go together")
	}
	if s.SRTP != "" {
		if _, err := sip.ParseSRTPPolicy(string(s.SRTP)); err != nil {
			v.bad(&s.SRTP, "%v", err)
		}
	}
	v.positive(&s.RingTimeout)
	if s.SessionExpires < rfc4028MinSE {
		v.bad(&s.SessionExpires, "must be at least 90s (RFC 4028), got %s", s.SessionExpires)
	}
}

func (t *TwilioAPIConfig) validate(v *validation, a *AgentConfig) {
	if !t.Enabled() {
		return
	}
	if t.AccountSID == "" || t.AuthToken == "" {
		v.bad(&t.AccountSID, "account_sid and auth_token (or auth_token_file) go together")
	}
	if a.Mode != agentWebSocket {
		v.bad(&t.AccountSID, "the Twilio API hangs up WebSocket agents: it needs %s %s", v.keys.of(&a.Mode), agentWebSocket)
	}
	if t.TransferType == "" {
		v.bad(&t.TransferType, "is empty (%s: the IVR takes the call back)", agent.TransferSystem)
	}
}

func (l *LogConfig) validate(v *validation) {
	switch strings.ToLower(l.Level) {
	case "debug", "info", "warn", "error":
	default:
		v.bad(&l.Level, "%q: want debug, info, warn or error", l.Level)
	}
	switch l.Format {
	case "json", "text":
	default:
		v.bad(&l.Format, "%q: want json or text", l.Format)
	}
}

// SIPListen is one parsed sip.listen entry.
type SIPListen struct {
	Network string // "udp", "tcp" or "tls"
	Addr    string // host:port
}

// ParseSIPListen parses "udp://host:port", "tcp://host:port" or "tls://host:port".
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

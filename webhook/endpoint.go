package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Endpoint is where an event is posted and the key it is signed with. Only
// NewEndpoint makes one, so an Endpoint always holds a validated URL and a
// parsed secret.
type Endpoint struct {
	url    string
	host   string
	secret Secret
}

// NewEndpoint validates a webhook URL (see ValidateURL) and parses its
// secret. The configuration calls it when it loads, so a bad endpoint is
// refused at start-up or reload, not at the first event.
func NewEndpoint(rawURL, secret string, allowInsecure bool) (*Endpoint, error) {
	u, err := ValidateURL(rawURL, allowInsecure)
	if err != nil {
		return nil, err
	}
	s, err := ParseSecret(secret)
	if err != nil {
		return nil, err
	}
	return &Endpoint{url: u.String(), host: u.Host, secret: s}, nil
}

// Host is the endpoint's host and port, what logs name (the path or query
// of a URL may carry a receiver's token).
func (e *Endpoint) Host() string { return e.host }

// ValidateURL checks a webhook URL: absolute http or https, a host, no
// user:password. Plain http is refused unless the host is loopback
// (localhost, 127.0.0.0/8, ::1) or allowInsecure is set. Its errors never
// quote the URL, which may hold a token.
func ValidateURL(raw string, allowInsecure bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("URL does not parse")
	}
	if u.User != nil {
		return nil, errors.New("URL must not carry user:password (use the signature to authenticate)")
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("URL must be absolute, with a host")
	}
	switch u.Scheme {
	case "https":
		return u, nil
	case "http":
		if allowInsecure || isLoopback(u.Hostname()) {
			return u, nil
		}
		return nil, fmt.Errorf("URL must be https (plain http only to loopback, or with webhooks.allow_insecure): host %s", u.Host)
	}
	return nil, fmt.Errorf("URL scheme must be https, not %q", u.Scheme)
}

// isLoopback: the name localhost or a loopback IP literal. Other names are
// not resolved here: what they resolve to can change.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// EndpointResolver names the endpoint of an event, or nil when it has none
// (the event is then dropped as "no_endpoint"). The dispatcher calls it
// before every attempt, so a configuration reload applies to events already
// queued. It must be fast and safe for concurrent use.
type EndpointResolver func(Event) *Endpoint

// Directory is the usual resolver's table: an endpoint per API credential
// (auth.credentials[].webhook_url, webhook_secret) and a default one for
// transfers created in headers mode (webhooks.default_url,
// default_secret). A credential without an endpoint gets no events; it
// never falls back to the default.
type Directory struct {
	ByCredential map[string]*Endpoint
	Default      *Endpoint
}

// Resolve is an EndpointResolver.
func (d *Directory) Resolve(ev Event) *Endpoint {
	if d == nil {
		return nil
	}
	if ev.Credential == "" {
		return d.Default
	}
	return d.ByCredential[ev.Credential]
}

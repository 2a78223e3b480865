package siptest

import (
	"crypto/rand"
	"encoding/hex"
	"sync"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// digestRealm is the realm a Destination challenges with.
const digestRealm = "carrier"

// digestChecker is a Destination's digest authentication (RFC 3261 §22.4),
// written apart from Handoff's own so the two check each other.
type digestChecker struct {
	username, password, algorithm string
	proxy                         bool // 407 and Proxy-Authorization, not 401
	strictURI                     bool // the response must be computed over the Request-URI
	staleOnce                     bool // the first good answer gets a stale=true challenge

	mu     sync.Mutex
	nonces map[string]bool // issued
	staled bool
}

// check answers the request's credentials: nil when they pass, else the
// response to send (a challenge, or 403 for a wrong answer when lenient).
func (d *digestChecker) check(req *sip.Request) *sip.Response {
	h := req.GetHeader(d.credentialsHeader())
	if h == nil {
		return d.challenge(req, false)
	}
	creds, err := digest.ParseCredentials(h.Value())
	if err != nil || creds.Username != d.username || creds.Realm != digestRealm || !d.issued(creds.Nonce) {
		return d.challenge(req, false)
	}
	// A lenient server computes over whatever uri= says; a strict one (an
	// SBC that follows RFC 3261 §22.4) over the Request-URI it received,
	// so a uri= that is not the Request-URI fails.
	uri := creds.URI
	if d.strictURI {
		uri = req.Recipient.String()
	}
	var qop []string
	if creds.QOP != "" {
		qop = []string{creds.QOP}
	}
	want, err := digest.Digest(&digest.Challenge{Realm: digestRealm, Nonce: creds.Nonce, Opaque: creds.Opaque, Algorithm: d.algorithm, QOP: qop},
		digest.Options{Method: string(req.Method), URI: uri, Username: d.username, Password: d.password, Count: creds.Nc, Cnonce: creds.Cnonce})
	switch {
	case (err != nil || want.Response != creds.Response) && d.strictURI:
		return d.challenge(req, false) // a strict SBC challenges again
	case err != nil || want.Response != creds.Response:
		return sip.NewResponseFromRequest(req, sip.StatusForbidden, "Forbidden", nil)
	}
	if d.takeStale() {
		return d.challenge(req, true)
	}
	return nil
}

func (d *digestChecker) credentialsHeader() string {
	if d.proxy {
		return "Proxy-Authorization"
	}
	return "Authorization"
}

func (d *digestChecker) challenge(req *sip.Request, stale bool) *sip.Response {
	code, reason, name := sip.StatusUnauthorized, "Unauthorized", "WWW-Authenticate"
	if d.proxy {
		code, reason, name = sip.StatusProxyAuthRequired, "Proxy Authentication Required", "Proxy-Authenticate"
	}
	c := digest.Challenge{Realm: digestRealm, Nonce: d.newNonce(), Algorithm: d.algorithm, QOP: []string{"auth"}, Stale: stale}
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	res.AppendHeader(sip.NewHeader(name, c.String()))
	return res
}

func (d *digestChecker) newNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	n := hex.EncodeToString(b)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nonces == nil {
		d.nonces = map[string]bool{}
	}
	d.nonces[n] = true
	return n
}

func (d *digestChecker) issued(nonce string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.nonces[nonce]
}

// takeStale reports whether this good answer is the one to call stale.
func (d *digestChecker) takeStale() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.staleOnce || d.staled {
		return false
	}
	d.staled = true
	return true
}

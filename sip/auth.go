package sip

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// nonceLifetime bounds how long a digest nonce is accepted; an older one
// gets a fresh challenge with stale=true so the caller retries silently.
const nonceLifetime = 5 * time.Minute

// authenticator decides whether an out-of-dialog request may create state:
// a source inside the trusted CIDRs passes, otherwise a digest user must
// answer our challenge. Nonces are stateless (time + HMAC), so a flood of
// unauthenticated INVITEs allocates nothing.
type authenticator struct {
	trusted []netip.Prefix
	realm   string
	users   map[string]string
	key     []byte
	// algorithm is the digest algorithm we challenge with (MD5 unless set).
	algorithm string
	seen      replayCache
}

// replayCache remembers the digest responses accepted within a nonce's
// lifetime, so a captured Authorization header cannot be used again. Two
// generations rotate every nonceLifetime (or when full), bounding memory.
type replayCache struct {
	mu        sync.Mutex
	cur, prev map[string]struct{}
	rotated   time.Time
}

const replayCacheMax = 200000

// firstUse records key and reports whether it was new.
func (c *replayCache) firstUse(key string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || now.Sub(c.rotated) > nonceLifetime || len(c.cur) >= replayCacheMax {
		c.prev, c.cur, c.rotated = c.cur, map[string]struct{}{}, now
	}
	if _, ok := c.cur[key]; ok {
		return false
	}
	if _, ok := c.prev[key]; ok {
		return false
	}
	c.cur[key] = struct{}{}
	return true
}

func newAuthenticator(trusted []netip.Prefix, realm string, users map[string]string) *authenticator {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &authenticator{trusted: trusted, realm: realm, users: users, key: key, algorithm: "MD5"}
}

// verdict is the outcome of an authentication check.
type verdict int

const (
	allowed verdict = iota
	challenge
	forbidden
)

func (a *authenticator) check(req *sip.Request, now time.Time) (verdict, sip.Header) {
	if a.trustedSource(req.Source()) {
		return allowed, nil
	}
	if len(a.users) == 0 {
		return forbidden, nil
	}
	h := req.GetHeader("Authorization")
	if h == nil {
		return challenge, a.challenge(now, false)
	}
	creds, err := digest.ParseCredentials(h.Value())
	if err != nil || creds.Realm != a.realm {
		return forbidden, nil
	}
	password, known := a.users[creds.Username]
	if !known {
		return forbidden, nil
	}
	fresh, valid := a.checkNonce(creds.Nonce, now)
	if !valid {
		return forbidden, nil
	}
	var qop []string
	if creds.QOP != "" {
		qop = []string{creds.QOP}
	}
	want, err := digest.Digest(&digest.Challenge{Realm: a.realm, Nonce: creds.Nonce, Opaque: creds.Opaque, Algorithm: creds.Algorithm, QOP: qop},
		digest.Options{Method: string(req.Method), URI: creds.URI, Username: creds.Username, Password: password, Count: creds.Nc, Cnonce: creds.Cnonce})
	if err != nil || subtle.ConstantTimeCompare([]byte(want.Response), []byte(creds.Response)) != 1 {
		return forbidden, nil
	}
	if !fresh {
		return challenge, a.challenge(now, true)
	}
	if !sameTarget(creds.URI, req.Recipient) {
		return forbidden, nil // credentials computed for another Request-URI
	}
	if !a.seen.firstUse(creds.Nonce+"|"+creds.Cnonce+"|"+strconv.Itoa(creds.Nc)+"|"+creds.Response, now) {
		// A replayed Authorization: a genuine UA answers a new challenge.
		return challenge, a.challenge(now, false)
	}
	return allowed, nil
}

// sameTarget reports whether the digest uri names the Request-URI (user,
// host and port; parameters aside).
func sameTarget(digestURI string, target sip.Uri) bool {
	var u sip.Uri
	if err := sip.ParseUri(digestURI, &u); err != nil {
		return false
	}
	return strings.EqualFold(u.Host, target.Host) && u.User == target.User && u.Port == target.Port
}

func (a *authenticator) trustedSource(src string) bool {
	ap, err := netip.ParseAddrPort(src)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range a.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (a *authenticator) challenge(now time.Time, stale bool) sip.Header {
	c := digest.Challenge{Realm: a.realm, Nonce: a.nonce(now), Algorithm: a.algorithm, QOP: []string{"auth"}, Stale: stale}
	return sip.NewHeader("WWW-Authenticate", c.String())
}

// nonce is base64(unix seconds | HMAC(key, unix seconds)).
func (a *authenticator) nonce(now time.Time) string {
	b := make([]byte, 8, 8+sha256.Size)
	binary.BigEndian.PutUint64(b, uint64(now.Unix()))
	m := hmac.New(sha256.New, a.key)
	m.Write(b)
	return base64.RawURLEncoding.EncodeToString(m.Sum(b))
}

// checkNonce reports whether we issued nonce (valid) and whether it is
// still within its lifetime (fresh).
func (a *authenticator) checkNonce(nonce string, now time.Time) (fresh, valid bool) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(nonce))
	if err != nil || len(b) != 8+sha256.Size {
		return false, false
	}
	m := hmac.New(sha256.New, a.key)
	m.Write(b[:8])
	if !hmac.Equal(m.Sum(nil), b[8:]) {
		return false, false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0)
	return now.Sub(issued) < nonceLifetime, true
}

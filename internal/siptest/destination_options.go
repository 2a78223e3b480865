package siptest

import (
	"crypto/tls"

	"github.com/handoff/handoff/media"
)

// DestinationOption changes how a Destination answers.
type DestinationOption func(*destinationConfig)

type destinationConfig struct {
	behaviour          behaviour
	unreachableContact bool
	tls                *tls.Config
	digest             *digestChecker
	answer             func(offer *media.Description, rtpPort int) []byte
}

// behaviour is what a Destination does with an INVITE that passes its
// digest check.
type behaviour int

const (
	answers      behaviour = iota // 180, then 200 OK
	busy                          // 486 Busy Here
	ringsForever                  // 180 until the caller cancels
	earlyMedia                    // 183 with SDP, 200 OK on Release
)

// Busy answers 486 Busy Here.
func Busy() DestinationOption { return func(c *destinationConfig) { c.behaviour = busy } }

// RingsForever sends 180 and never answers: the caller must CANCEL.
func RingsForever() DestinationOption {
	return func(c *destinationConfig) { c.behaviour = ringsForever }
}

// EarlyMediaUntilRelease sends 183 Session Progress with SDP (early media
// from its RTP socket) and answers only on Release.
func EarlyMediaUntilRelease() DestinationOption {
	return func(c *destinationConfig) { c.behaviour = earlyMedia }
}

// UnreachableContact answers with a Contact on a port nobody listens on,
// so (over TLS or TCP) its 200 OK cannot be acknowledged.
func UnreachableContact() DestinationOption {
	return func(c *destinationConfig) { c.unreachableContact = true }
}

// OverTLS also listens for SIP over TLS (Destination.TLSAddr), and asks for
// in-dialog requests over TLS.
func OverTLS(conf *tls.Config) DestinationOption { return func(c *destinationConfig) { c.tls = conf } }

// AnswerSDP builds the 200 OK's SDP from the offer (and its RTP port), in
// place of plain A-law.
func AnswerSDP(build func(offer *media.Description, rtpPort int) []byte) DestinationOption {
	return func(c *destinationConfig) { c.answer = build }
}

// RequireDigest challenges every INVITE (401, realm "carrier", MD5, qop
// auth) and accepts the username's password. By default it is lenient, as
// many servers are: it computes the response over the credentials' uri=
// and refuses a wrong one with 403.
func RequireDigest(username, password string, opts ...DigestOption) DestinationOption {
	return func(c *destinationConfig) {
		c.digest = &digestChecker{username: username, password: password, algorithm: "MD5"}
		for _, o := range opts {
			o(c.digest)
		}
	}
}

// DigestOption tunes RequireDigest.
type DigestOption func(*digestChecker)

// DigestAlgorithm challenges with algorithm (MD5, SHA-256, ...).
func DigestAlgorithm(algorithm string) DigestOption {
	return func(d *digestChecker) { d.algorithm = algorithm }
}

// StrictDigestURI checks the way a strict SBC does (RFC 3261 §22.4): the
// response is recomputed over the exact Request-URI received, parameters
// and all, and any mismatch (a uri= that is not that Request-URI) is
// challenged again.
func StrictDigestURI() DigestOption { return func(d *digestChecker) { d.strictURI = true } }

// ProxyChallenge challenges with 407 and Proxy-Authenticate, and reads
// Proxy-Authorization.
func ProxyChallenge() DigestOption { return func(d *digestChecker) { d.proxy = true } }

// StaleNonceOnce meets the first correct answer with a fresh challenge
// marked stale=true, so the caller must retry once more.
func StaleNonceOnce() DigestOption { return func(d *digestChecker) { d.staleOnce = true } }

package sip

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/url"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/handoff/handoff/transfer"
)

// maxAuthAttempts bounds the authenticated INVITEs of one return call: the
// first answer to a challenge, and one more when the nonce went stale.
const maxAuthAttempts = 2

// returnInvite places a new call to returnUri, answers digest challenges
// with the transfer's credentials, and bridges it to the caller while the
// agent keeps listening to both sides, until either side hangs up.
func (c *Call) returnInvite(out transfer.OutputContext, res *transfer.ReturnResult) {
	res.Method = transfer.ReturnInvite
	ret := c.transfer.SIP
	var target sip.Uri
	if ret == nil || ret.ReturnURI == "" || sip.ParseUri(ret.ReturnURI, &target) != nil {
		fail(res, 0, "no usable returnUri")
		return
	}
	ports, err := c.s.cfg.Ports.Allocate()
	if err != nil {
		fail(res, 0, "no media ports")
		return
	}
	r := &returnLeg{outLeg: newOutLeg(c.s, ports, c.log.With("leg", "return")), call: c}
	defer r.close()

	req := c.returnRequest(target, out, r.prefs.offer(r.local, srtpOfferOptions(c.s.cfg.SRTP, target)))
	// The caller hanging up while it rings cancels the return call.
	ringCtx, cancel := context.WithTimeout(c.dlg.Context(), c.s.cfg.Return.RingTimeout)
	defer cancel()
	err = c.dialReturn(ringCtx, r, req, ret.Auth)
	c.ringback.Store(nil)
	if err != nil {
		c.bridge.Store(nil)
		c.dialFailed(ringCtx, err, res)
		return
	}
	if !c.connectReturn(r, res) {
		return
	}
	c.agent.ListenOnly()
	res.Result, res.SIPCode, res.EndedAt = transfer.ReturnSucceeded, sip.StatusOK, c.s.svc.Now()
	c.recordReturn(res)
	c.log.Info("return call bridged", "return_call_id", r.dlg.InviteRequest.CallID().Value())

	c.runBridge(r)
	res.BridgeEndedAt = c.s.svc.Now()
}

// dialReturn sends the return INVITE and waits for its answer, playing
// ringback or early media meanwhile.
func (c *Call) dialReturn(ctx context.Context, r *returnLeg, req *sip.Request, creds *transfer.Credentials) error {
	return r.dial(ctx, req, creds, func(resp *sip.Response) { c.earlyMedia(r, resp) })
}

// notSentError: the return INVITE could not be sent at all.
type notSentError struct{ err error }

func (e *notSentError) Error() string { return "INVITE not sent: " + e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// credentialsRejectedError: the destination challenged our credentials
// again (status 401 or 407).
type credentialsRejectedError struct{ status int }

func (e *credentialsRejectedError) Error() string { return "credentials rejected" }

// challengeOf is the 401 or 407 that ended an INVITE, nil for any other end.
func challengeOf(err error) *sip.Response {
	var rejected *sipgo.ErrDialogResponse
	if errors.As(err, &rejected) && (rejected.Res.StatusCode == sip.StatusUnauthorized || rejected.Res.StatusCode == sip.StatusProxyAuthRequired) {
		return rejected.Res
	}
	return nil
}

// authorized is the next INVITE of a challenged one: the same request with
// the next CSeq, a new branch, and the digest answer computed over its
// exact Request-URI (RFC 3261 §22.2, §22.4).
func authorized(prev *sip.Request, chal *sip.Response, creds *transfer.Credentials) (*sip.Request, error) {
	challengeName, answerName := "WWW-Authenticate", "Authorization"
	if chal.StatusCode == sip.StatusProxyAuthRequired {
		challengeName, answerName = "Proxy-Authenticate", "Proxy-Authorization"
	}
	h := chal.GetHeader(challengeName)
	if h == nil {
		return nil, &credentialsRejectedError{status: chal.StatusCode} // nothing to answer
	}
	ch, err := digest.ParseChallenge(h.Value())
	if err != nil {
		return nil, &credentialsRejectedError{status: chal.StatusCode}
	}
	ch.Algorithm = strings.ToUpper(ch.Algorithm) // some servers send md5
	req := prev.Clone()
	body := req.Body()
	answer, err := digest.Digest(ch, digest.Options{
		Method: string(sip.INVITE), URI: req.Recipient.String(),
		Username: creds.Username, Password: creds.Password,
		GetBody: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil },
	})
	if err != nil {
		return nil, &credentialsRejectedError{status: chal.StatusCode} // an algorithm we cannot answer
	}
	req.RemoveHeader("Via")
	req.RemoveHeader(answerName)
	req.AppendHeader(sip.NewHeader(answerName, answer.String()))
	req.CSeq().SeqNo++
	return req, nil
}

// staleChallenge reports whether a 401/407 only says our nonce went stale.
func staleChallenge(resp *sip.Response) bool {
	for _, name := range []string{"WWW-Authenticate", "Proxy-Authenticate"} {
		if h := resp.GetHeader(name); h != nil && strings.Contains(strings.ToLower(h.Value()), "stale=true") {
			return true
		}
	}
	return false
}

// dialFailed records why the return call was not answered, in our words
// (the Go error goes to the log).
func (c *Call) dialFailed(ringCtx context.Context, err error, res *transfer.ReturnResult) {
	var rejected *sipgo.ErrDialogResponse
	var badCreds *credentialsRejectedError
	var notSent *notSentError
	switch {
	case errors.As(err, &rejected):
		fail(res, rejected.Res.StatusCode, "return call rejected")
	case errors.As(err, &badCreds):
		fail(res, badCreds.status, "credentials rejected")
	case c.dlg.Context().Err() != nil:
		fail(res, 0, "caller hung up while the return call rang")
	case ringCtx.Err() != nil:
		fail(res, sip.StatusRequestTerminated, "no answer within "+seconds(c.s.cfg.Return.RingTimeout))
	case errors.As(err, &notSent):
		fail(res, 0, "return INVITE could not be sent")
	case errors.Is(err, sip.ErrTransactionTimeout):
		fail(res, 0, "no response from the return destination")
	default:
		fail(res, 0, "return call failed")
	}
	c.log.Info("return call not answered", "err", err)
}

// connectReturn confirms the answered return call (ACK), takes its SDP
// answer and starts the bridge; when any step fails it hangs up and
// records why.
func (c *Call) connectReturn(r *returnLeg, res *transfer.ReturnResult) bool {
	err := r.confirm(r)
	switch {
	case errors.Is(err, errAckFailed):
		// The destination answered but cannot be confirmed: a bridge would
		// carry no call. Hang it up and let the fallback hand the call back.
		r.bye()
		c.log.Warn("ACK to the return call failed", "err", err)
		fail(res, sip.StatusOK, "return call answered but the ACK could not be sent")
		return false
	case err != nil:
		c.hangupBoth(r)
		c.log.Warn("return call's SDP answer unusable", "err", err)
		fail(res, sip.StatusOK, "return call answered with unusable SDP")
		return false
	}
	if err := c.startBridge(r); err != nil {
		c.hangupBoth(r)
		c.log.Warn("bridge failed", "err", err)
		fail(res, sip.StatusOK, "media for the bridged call could not start")
		return false
	}
	return true
}

// returnRequest builds the return INVITE: the destination sees the
// original caller (From user and display name, P-Asserted-Identity), the
// returnUri's own URI headers as headers (RFC 3261 §19.1.5; the
// Request-URI and To carry none), then the outcome under the transfer's
// names and the User-to-User value, never a name twice.
func (c *Call) returnRequest(target sip.Uri, out transfer.OutputContext, offer []byte) *sip.Request {
	uriHeaders := target.Headers
	target.Headers = nil
	req := c.s.outboundInvite(c.dlg.InviteRequest, target, offer)
	appendContext(req, uriHeaders, newReturnContext(c.transfer, out, c.s.cfg.Return))
	return req
}

// appendContext adds the returnUri's URI headers, then Handoff's: the
// transfer id (Handoff's names), the outcome within the cap and the
// User-to-User value, each only if the URI did not set it.
func appendContext(req *sip.Request, uriHeaders sip.HeaderParams, rc returnContext) {
	has := appendURIHeaders(req, uriHeaders)
	if rc.id != nil && !has(rc.id.name) {
		req.AppendHeader(sip.NewHeader(rc.id.name, sanitizeHeaderValue(rc.id.value)))
	}
	uui, fields := rc.fit(has)
	if uui != nil {
		fields = append(fields, *uui)
	}
	for _, f := range fields {
		req.AppendHeader(sip.NewHeader(f.name, sanitizeHeaderValue(f.value)))
	}
}

// uriHeadersRefused are the headers a returnUri may not set on the return
// INVITE (lower case, compact forms too): the ones that make the request
// what it is, routes and credentials. RFC 3261 §19.1.5 asks for this care.
var uriHeadersRefused = map[string]bool{
	"via": true, "v": true, "from": true, "f": true, "to": true, "t": true, "call-id": true, "i": true,
	"cseq": true, "contact": true, "m": true, "max-forwards": true, "content-length": true, "l": true,
	"content-type": true, "c": true, "route": true, "record-route": true, "authorization": true,
	"proxy-authorization": true, "p-asserted-identity": true, "body": true,
}

// appendURIHeaders adds the returnUri's headers to req (percent-escapes
// decoded, control characters made spaces) and returns which names req
// now has from them (case-insensitive).
func appendURIHeaders(req *sip.Request, hdrs sip.HeaderParams) func(name string) bool {
	added := map[string]bool{}
	for _, kv := range hdrs {
		name, value := unescapeURIPart(kv.K), unescapeURIPart(kv.V)
		if !validHeaderToken(name) || uriHeadersRefused[strings.ToLower(name)] {
			continue
		}
		req.AppendHeader(sip.NewHeader(name, sanitizeHeaderValue(value)))
		added[strings.ToLower(name)] = true
	}
	return func(name string) bool { return added[strings.ToLower(name)] }
}

func unescapeURIPart(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// validHeaderToken reports whether s may be a header name (RFC 3261 token).
func validHeaderToken(s string) bool {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.IndexByte("-.!%*_+`'~", ch) >= 0) {
			return false
		}
	}
	return s != ""
}

// sanitizeHeaderValue keeps a value on one header line: each control byte
// (C0, DEL) becomes a space, every other byte stays as it is.
func sanitizeHeaderValue(v string) string {
	if !hasControl(v) {
		return v
	}
	b := []byte(v)
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = ' '
		}
	}
	return string(b)
}

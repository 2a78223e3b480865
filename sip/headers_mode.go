package sip

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	"github.com/handoff/handoff/transfer"
)

// HeadersMode is the API-less way in: the IVR sends the call to a static
// URI (sip:<User>@handoff) with its context in headers, and Handoff
// creates the transfer as the INVITE arrives. Two name sets are read on
// every INVITE: Handoff's X-Handoff- headers and the X-GA- names of the
// GenerativeAgent "SIP Headers Transfer", so an IVR set up for that mode
// works unchanged; where both give a field, Handoff's wins. The call goes
// back by REFER to the header's or the configured return URI, with the
// outcome on the Refer-To URI under the names Names selects, through the
// same code as API-created transfers.
type HeadersMode struct {
	Enabled bool
	// User is the Request-URI user part that selects this mode.
	User string
	// Owner is the API credential id that owns (and may GET) the transfers.
	Owner string
	// ReturnURI is used when the INVITE carries no X-Handoff-Return-Uri;
	// with neither, the call returns by BYE.
	ReturnURI string
	// Names is the name set of the outcome on the return: NamesAuto (the
	// default: X-GA- when the INVITE carried an X-GA- header, else
	// X-Handoff-), NamesHandoff or NamesGA.
	Names HeaderNames
}

// HeaderNames selects the header names headers mode answers with.
type HeaderNames string

const (
	NamesAuto    HeaderNames = "auto"
	NamesHandoff HeaderNames = "handoff"
	NamesGA      HeaderNames = "ga"
)

// ParseHeaderNames reads a name set as configured: auto, handoff or ga.
func ParseHeaderNames(s string) (HeaderNames, error) {
	switch n := HeaderNames(s); n {
	case NamesAuto, NamesHandoff, NamesGA:
		return n, nil
	}
	return "", fmt.Errorf("%q: want auto, handoff or ga", s)
}

// Headers read in headers mode.
const (
	hdrTransferID     = "X-Handoff-Transfer-Id"
	hdrConversationID = "X-Handoff-Conversation-Id"
	hdrTask           = "X-Handoff-Task"
	hdrVarPrefix      = "X-Handoff-Var-"
	hdrReturnURI      = "X-Handoff-Return-Uri"
)

// The X-GA- names of the GenerativeAgent SIP Headers Transfer, read as
// well (docs.asapp.com/generativeagent/integrate/sip-transfers-headers).
const (
	gaTask           = "X-GA-taskName"
	gaConversationID = "X-GA-extConversationId"
	gaCustomerID     = "X-GA-customerId"
	gaVarPrefix      = "X-GA-iv-"
	// gaCustomerVar is the input variable X-GA-customerId becomes.
	gaCustomerVar = "customerId"
)

// Bounds on what one INVITE may carry in headers mode.
const (
	maxHeaderVars     = 50
	maxHeaderValueLen = 1024
)

var transferIDPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)

// createFromHeaders registers a SIP transfer from an INVITE's headers.
func (s *Server) createFromHeaders(ctx context.Context, req *sip.Request) (*transfer.Transfer, error) {
	m := s.cfg.HeadersMode
	id := uuid.NewString()
	if h := req.GetHeader(hdrTransferID); h != nil && transferIDPattern.MatchString(strings.TrimSpace(h.Value())) {
		id = strings.TrimSpace(h.Value())
	}
	conv := firstHeaderValue(req, hdrConversationID, gaConversationID)
	if conv == "" {
		conv = callID(req)
	}
	ret := headersReturn(req, m.ReturnURI)
	if m.Names == NamesGA || (m.Names != NamesHandoff && hasGAHeader(req)) {
		ret.ContextNames = ContextNamesGA
	}
	t, _, err := s.svc.Create(ctx, m.Owner, transfer.CreateRequest{
		ID: id, ExternalConversationID: conv, Type: transfer.TypeSIP, SIP: ret, InputContext: headersInput(req),
		HeadersMode: true, // its webhook events go to the default endpoint
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("transfer created from SIP headers", "transfer_id", t.ID, "call_id", callID(req), "return", ret.ReturnTransferType)
	return t, nil
}

// headersInput is the input context an INVITE's headers give: the task,
// and the variables (X-GA-iv- first, so X-Handoff-Var- wins a name both
// give; X-GA-customerId as customerId unless a variable of that name came).
func headersInput(req *sip.Request) *transfer.InputContext {
	in := &transfer.InputContext{TaskName: firstHeaderValue(req, hdrTask, gaTask), InputVariables: map[string]string{}}
	for _, prefix := range []string{gaVarPrefix, hdrVarPrefix} {
		for _, h := range req.Headers() {
			name := h.Name()
			if len(name) > len(prefix) && strings.EqualFold(name[:len(prefix)], prefix) && len(in.InputVariables) < maxHeaderVars {
				in.InputVariables[name[len(prefix):]] = headerValue(h.Value())
			}
		}
	}
	if _, set := in.InputVariables[gaCustomerVar]; !set && len(in.InputVariables) < maxHeaderVars {
		if v := firstHeaderValue(req, gaCustomerID); v != "" {
			in.InputVariables[gaCustomerVar] = v
		}
	}
	return in
}

// headersReturn is the return an INVITE's headers ask for: REFER to
// X-Handoff-Return-Uri, else to the configured URI; BYE with neither, or
// with a URI the API would refuse as a returnUri (transfer.ParseSIPURI:
// sip: or sips:, no control bytes, raw or percent-encoded).
func headersReturn(req *sip.Request, configured string) *transfer.SIPReturn {
	returnURI := configured
	if h := req.GetHeader(hdrReturnURI); h != nil {
		returnURI = strings.Trim(strings.TrimSpace(h.Value()), "<>")
	}
	if returnURI != "" {
		var u sip.Uri
		if _, err := transfer.ParseSIPURI(returnURI); err == nil && sip.ParseUri(returnURI, &u) == nil {
			return &transfer.SIPReturn{ReturnTransferType: transfer.ReturnRefer, ReturnURI: returnURI}
		}
	}
	return &transfer.SIPReturn{ReturnTransferType: transfer.ReturnBye}
}

// firstHeaderValue is the value (see headerValue) of the first of names
// req carries with a value, or "".
func firstHeaderValue(req *sip.Request, names ...string) string {
	for _, name := range names {
		if h := req.GetHeader(name); h != nil && strings.TrimSpace(h.Value()) != "" {
			return headerValue(h.Value())
		}
	}
	return ""
}

// hasGAHeader reports whether req carries an X-GA- header.
func hasGAHeader(req *sip.Request) bool {
	for _, h := range req.Headers() {
		if n := h.Name(); len(n) > 5 && strings.EqualFold(n[:5], "X-GA-") {
			return true
		}
	}
	return false
}

// headerValue unescapes a percent-encoded value (as IVRs often send them),
// turns control characters (an escaped CR/LF, NUL) into spaces and bounds
// its length.
func headerValue(v string) string {
	v = strings.TrimSpace(v)
	if u, err := url.PathUnescape(v); err == nil {
		v = u
	}
	if len(v) > maxHeaderValueLen {
		v = v[:maxHeaderValueLen]
	}
	return sanitizeHeaderValue(v)
}

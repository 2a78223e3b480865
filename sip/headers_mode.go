package sip

import (
	"context"
	"net/url"
	"regexp"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	"github.com/handoff/handoff/transfer"
)

// HeadersMode is the API-less way in: the IVR sends the call to a static
// URI (sip:<User>@handoff) with its context in X-Handoff- headers, and
// Handoff creates the transfer as the INVITE arrives. The call goes back
// by REFER to the header's or the configured return URI, with the outcome
// on the Refer-To URI, through the same code as API-created transfers.
type HeadersMode struct {
	Enabled bool
	// User is the Request-URI user part that selects this mode.
	User string
	// Owner is the API credential id that owns (and may GET) the transfers.
	Owner string
	// ReturnURI is used when the INVITE carries no X-Handoff-Return-Uri;
	// with neither, the call returns by BYE.
	ReturnURI string
}

// Headers read in headers mode.
const (
	hdrTransferID     = "X-Handoff-Transfer-Id"
	hdrConversationID = "X-Handoff-Conversation-Id"
	hdrTask           = "X-Handoff-Task"
	hdrVarPrefix      = "X-Handoff-Var-"
	hdrReturnURI      = "X-Handoff-Return-Uri"
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
	conv := callID(req)
	if h := req.GetHeader(hdrConversationID); h != nil && h.Value() != "" {
		conv = headerValue(h.Value())
	}
	in := &transfer.InputContext{InputVariables: map[string]string{}}
	if h := req.GetHeader(hdrTask); h != nil {
		in.TaskName = headerValue(h.Value())
	}
	for _, h := range req.Headers() {
		name := h.Name()
		if len(name) > len(hdrVarPrefix) && strings.EqualFold(name[:len(hdrVarPrefix)], hdrVarPrefix) && len(in.InputVariables) < maxHeaderVars {
			in.InputVariables[name[len(hdrVarPrefix):]] = headerValue(h.Value())
		}
	}
	ret := &transfer.SIPReturn{ReturnTransferType: transfer.ReturnBye}
	returnURI := m.ReturnURI
	if h := req.GetHeader(hdrReturnURI); h != nil {
		returnURI = strings.Trim(strings.TrimSpace(h.Value()), "<>")
	}
	if returnURI != "" {
		var u sip.Uri
		if err := sip.ParseUri(returnURI, &u); err == nil && (u.Scheme == "sip" || u.Scheme == "sips") && u.Host != "" {
			ret = &transfer.SIPReturn{ReturnTransferType: transfer.ReturnRefer, ReturnURI: returnURI}
		}
	}
	t, _, err := s.svc.Create(ctx, m.Owner, transfer.CreateRequest{
		ID: id, ExternalConversationID: conv, Type: transfer.TypeSIP, SIP: ret, InputContext: in,
		HeadersMode: true, // its webhook events go to the default endpoint
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("transfer created from SIP headers", "transfer_id", t.ID, "call_id", callID(req), "return", ret.ReturnTransferType)
	return t, nil
}

// headerValue unescapes a percent-encoded value (as IVRs often send them)
// and bounds its length.
func headerValue(v string) string {
	v = strings.TrimSpace(v)
	if u, err := url.PathUnescape(v); err == nil {
		v = u
	}
	if len(v) > maxHeaderValueLen {
		v = v[:maxHeaderValueLen]
	}
	return v
}

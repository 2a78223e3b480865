package control

import (
	"time"

	"github.com/handoff/handoff/transfer"
)

// transferView is the API shape of a transfer: the reference fields plus
// the documented extensions sip.transferUri, sip.expiresAt, sip.inbound,
// endReason and returnResult.
// It is built field by field from the stored record, so stored-only data
// (owner, request hash, claim, the digest password) can never leak.
type transferView struct {
	ID                     string             `json:"id"`
	ExternalConversationID string             `json:"externalConversationId"`
	Status                 transfer.Status    `json:"status"`
	Type                   transfer.Type      `json:"type"`
	CreatedAt              string             `json:"createdAt,omitempty"`
	CallReceivedAt         string             `json:"callReceivedAt,omitempty"`
	CompletedAt            string             `json:"completedAt,omitempty"`
	PhoneNumber            *phoneNumberView   `json:"phoneNumber,omitempty"`
	SIP                    *sipView           `json:"sip,omitempty"`
	InputContext           *inputContextView  `json:"inputContext,omitempty"`
	OutputContext          *outputContextView `json:"outputContext,omitempty"`
	EndReason              string             `json:"endReason,omitempty"`
	ReturnResult           *returnResultView  `json:"returnResult,omitempty"`
}

// returnResultView is the documented returnResult extension: how the call
// was handed back.
type returnResultView struct {
	Method        transfer.ReturnType `json:"method"`
	Result        string              `json:"result"`
	SIPCode       int                 `json:"sipCode,omitempty"`
	Reason        string              `json:"reason,omitempty"`
	Fallback      transfer.ReturnType `json:"fallback,omitempty"`
	StartedAt     string              `json:"startedAt"`
	EndedAt       string              `json:"endedAt,omitempty"`
	BridgeEndedAt string              `json:"bridgeEndedAt,omitempty"`
	AgentLeg      *agentLegView       `json:"agentLeg,omitempty"`
}

// agentLegView is returnResult.agentLeg: which SIP agent leg the call was
// handed to and how it ended.
type agentLegView struct {
	URI    string `json:"uri"`
	CallID string `json:"callId"`
	Ending string `json:"ending"`
}

type phoneNumberView struct {
	TransferNumber string `json:"transferNumber"`
	Country        string `json:"country"`
	ExpiresAt      string `json:"expiresAt"`
}

type sipView struct {
	ReturnTransferType         transfer.ReturnType `json:"returnTransferType"`
	ReturnURI                  string              `json:"returnUri,omitempty"`
	ReturnInviteAuthentication *authView           `json:"returnInviteAuthentication,omitempty"`
	TransferURI                string              `json:"transferUri"`
	ExpiresAt                  string              `json:"expiresAt"`
	Inbound                    *inboundView        `json:"inbound,omitempty"`
}

// inboundView is the documented sip.inbound extension of GET: what the
// INVITE that took the call said about it (UUI, identity and history
// headers, platform call ids, the X- headers the agent received).
type inboundView struct {
	CallID           string            `json:"callId,omitempty"`
	From             string            `json:"from,omitempty"`
	To               string            `json:"to,omitempty"`
	UUI              []uuiView         `json:"uui,omitempty"`
	AssertedIdentity []string          `json:"pAssertedIdentity,omitempty"`
	Diversion        []string          `json:"diversion,omitempty"`
	HistoryInfo      []string          `json:"historyInfo,omitempty"`
	CallInfo         []string          `json:"callInfo,omitempty"`
	CallIDs          map[string]string `json:"callIds,omitempty"`
	Headers          map[string]string `json:"headers,omitempty"`
}

type uuiView struct {
	Header   string `json:"header"`
	Value    string `json:"value"`
	Encoding string `json:"encoding"`
	Purpose  string `json:"purpose"`
	Content  string `json:"content,omitempty"`
	PD       string `json:"pd,omitempty"`
	Text     string `json:"text,omitempty"`
	UCID     string `json:"ucid,omitempty"`
}

func newInboundView(in *transfer.Inbound) *inboundView {
	if in == nil {
		return nil
	}
	v := &inboundView{
		CallID: in.CallID, From: in.From, To: in.To,
		AssertedIdentity: in.AssertedIdentity, Diversion: in.Diversion, HistoryInfo: in.HistoryInfo, CallInfo: in.CallInfo,
		CallIDs: in.CallIDs, Headers: in.Headers,
	}
	for _, u := range in.UUI {
		v.UUI = append(v.UUI, uuiView{Header: u.Header, Value: u.Value, Encoding: u.Encoding, Purpose: u.Purpose,
			Content: u.Content, PD: u.PD, Text: u.Text, UCID: u.UCID})
	}
	return v
}

// authView carries the username only: the password is write-only.
type authView struct {
	Username string `json:"username"`
}

type inputContextView struct {
	TaskName       string            `json:"taskName,omitempty"`
	InputVariables map[string]string `json:"inputVariables,omitempty"`
}

type outputContextView struct {
	TransferType       string            `json:"transferType,omitempty"`
	CurrentTaskName    string            `json:"currentTaskName,omitempty"`
	ReferenceVariables map[string]string `json:"referenceVariables,omitempty"`
	TransferVariables  map[string]string `json:"transferVariables,omitempty"`
}

// timestamp renders t as RFC 3339 in UTC with second precision, like the
// reference's examples; "" (omitted) for the zero time.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// view renders t; full adds the fields only GET returns (timestamps,
// outputContext, endReason, returnResult, sip.inbound).
func (a *API) view(t *transfer.Transfer, full bool) *transferView {
	v := &transferView{
		ID:                     t.ID,
		ExternalConversationID: t.ExternalConversationID,
		Status:                 t.StatusAt(a.clock()),
		Type:                   t.Type,
	}
	switch t.Type {
	case transfer.TypePhoneNumber:
		if t.PhoneNumber != nil {
			v.PhoneNumber = &phoneNumberView{
				TransferNumber: t.PhoneNumber.TransferNumber,
				Country:        t.PhoneNumber.Country,
				ExpiresAt:      timestamp(t.ExpiresAt),
			}
		}
	case transfer.TypeSIP:
		s := &sipView{
			ReturnTransferType: transfer.ReturnBye,
			TransferURI:        a.cfg.SIPTransferURI(t.ID),
			ExpiresAt:          timestamp(t.ExpiresAt),
		}
		if t.SIP != nil {
			if t.SIP.ReturnTransferType != "" {
				s.ReturnTransferType = t.SIP.ReturnTransferType
			}
			s.ReturnURI = t.SIP.ReturnURI
			if t.SIP.Auth != nil && t.SIP.Auth.Username != "" {
				s.ReturnInviteAuthentication = &authView{Username: t.SIP.Auth.Username}
			}
		}
		v.SIP = s
	}
	if in := t.InputContext; in != nil && (in.TaskName != "" || len(in.InputVariables) > 0) {
		v.InputContext = &inputContextView{TaskName: in.TaskName, InputVariables: in.InputVariables}
	}
	if full {
		addGetFields(v, t)
	}
	return v
}

// addGetFields adds to v what only GET shows.
func addGetFields(v *transferView, t *transfer.Transfer) {
	v.CreatedAt = timestamp(t.CreatedAt)
	v.CallReceivedAt = timestamp(t.CallReceivedAt)
	v.CompletedAt = timestamp(t.CompletedAt)
	v.EndReason = string(t.EndReason)
	if v.SIP != nil {
		v.SIP.Inbound = newInboundView(t.Inbound)
	}
	if r := t.Return; r != nil {
		v.ReturnResult = &returnResultView{
			Method: r.Method, Result: r.Result, SIPCode: r.SIPCode, Reason: r.Reason, Fallback: r.Fallback,
			StartedAt: timestamp(r.StartedAt), EndedAt: timestamp(r.EndedAt), BridgeEndedAt: timestamp(r.BridgeEndedAt),
		}
		if l := r.AgentLeg; l != nil {
			v.ReturnResult.AgentLeg = &agentLegView{URI: l.URI, CallID: l.CallID, Ending: l.Ending}
		}
	}
	if out := t.OutputContext; out != nil {
		v.OutputContext = &outputContextView{
			TransferType:       out.TransferType,
			CurrentTaskName:    out.CurrentTaskName,
			ReferenceVariables: out.ReferenceVariables,
			TransferVariables:  out.TransferVariables,
		}
	}
}

package control

import (
	"time"

	"github.com/handoff/handoff/transfer"
)

// transferView is the API shape of a transfer: the reference fields plus
// the documented extensions sip.transferUri, sip.expiresAt and endReason.
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
// outputContext, endReason).
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
	if !full {
		return v
	}
	v.CreatedAt = timestamp(t.CreatedAt)
	v.CallReceivedAt = timestamp(t.CallReceivedAt)
	v.CompletedAt = timestamp(t.CompletedAt)
	v.EndReason = string(t.EndReason)
	if r := t.Return; r != nil {
		v.ReturnResult = &returnResultView{
			Method: r.Method, Result: r.Result, SIPCode: r.SIPCode, Reason: r.Reason, Fallback: r.Fallback,
			StartedAt: timestamp(r.StartedAt), EndedAt: timestamp(r.EndedAt), BridgeEndedAt: timestamp(r.BridgeEndedAt),
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
	return v
}

// Package transfer owns the call-transfer record, its life-cycle, the number
// pool and the Store that keeps them. It serves no HTTP and speaks no SIP;
// what it knows of SIP is text: the grammar of a SIP transfer's returnUri,
// checked as a string so the API needs no SIP stack (sipuri.go), and what
// a call's INVITE said, recorded as the SIP side hands it over (Inbound).
package transfer

import (
	"errors"
	"fmt"
	"time"
)

// Type is how the IVR hands the call over.
type Type string

const (
	TypePhoneNumber Type = "PHONE_NUMBER"
	TypeSIP         Type = "SIP"
)

// Status is the life-cycle state of a transfer.
type Status string

const (
	StatusActive    Status = "ACTIVE"
	StatusOngoing   Status = "ONGOING"
	StatusCompleted Status = "COMPLETED"
	StatusExpired   Status = "EXPIRED"
)

// ReturnType is how a SIP transfer goes back when the agent is done.
type ReturnType string

const (
	ReturnBye    ReturnType = "BYE"
	ReturnRefer  ReturnType = "REFER"
	ReturnInvite ReturnType = "INVITE"
)

// EndReason is why a transfer's call ended. The values are part of the API
// (endReason) and label metrics: never change one.
type EndReason string

const (
	// EndAgentFinished: the agent finished; the call was handed back.
	EndAgentFinished EndReason = "agent_finished"
	// EndCallerHangup: the caller (or the IVR holding the call) hung up.
	EndCallerHangup EndReason = "caller_hangup"
	// EndMediaTimeout: no RTP from the caller for media.rtp_timeout.
	EndMediaTimeout EndReason = "media_timeout"
	// EndSessionExpired: the caller stopped refreshing its session timer
	// (RFC 4028).
	EndSessionExpired EndReason = "session_expired"
	// EndAckTimeout: our 200 OK got no ACK. It names the BYE that follows;
	// the transfer itself stays ACTIVE for a retry.
	EndAckTimeout EndReason = "ack_timeout"
	// EndError: the call could not go on (media or store failure).
	EndError EndReason = "error"
	// EndShutdown: the drain deadline passed with the call still up.
	EndShutdown EndReason = "shutdown"
	// EndNodeLost: the node that answered the call stopped sending
	// heartbeats, and another node ended the transfer for it.
	EndNodeLost EndReason = "node_lost"
	// EndNodeRestarted: the call was in progress on a node when that node's
	// process died; the node records it when it starts again (the call's
	// media and dialog died with the process).
	EndNodeRestarted EndReason = "node_restarted"
)

// EndReasons lists every end reason, in the order the API documents them.
func EndReasons() []EndReason {
	return []EndReason{EndAgentFinished, EndCallerHangup, EndMediaTimeout, EndSessionExpired,
		EndAckTimeout, EndError, EndShutdown, EndNodeLost, EndNodeRestarted}
}

// InputContext is what the IVR tells the agent at creation.
type InputContext struct {
	TaskName       string            `json:"taskName,omitempty"`
	InputVariables map[string]string `json:"inputVariables,omitempty"`
}

// OutputContext is the agent's outcome, read back by the IVR.
type OutputContext struct {
	TransferType       string            `json:"transferType,omitempty"`
	CurrentTaskName    string            `json:"currentTaskName,omitempty"`
	ReferenceVariables map[string]string `json:"referenceVariables,omitempty"`
	TransferVariables  map[string]string `json:"transferVariables,omitempty"`
}

// PhoneNumber is the leased temporary number of a PHONE_NUMBER transfer.
type PhoneNumber struct {
	TransferNumber string `json:"transferNumber"`
	Country        string `json:"country"`
}

// Credentials answer a digest challenge on the INVITE return.
type Credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// SIPReturn holds the return instructions of a SIP transfer.
type SIPReturn struct {
	ReturnTransferType ReturnType   `json:"returnTransferType"`
	ReturnURI          string       `json:"returnUri,omitempty"`
	Auth               *Credentials `json:"returnInviteAuthentication,omitempty"`
	// ContextNames names the header set the outcome goes back under: ""
	// for Handoff's X-Handoff- names, "ga" for the X-GA- names of the
	// GenerativeAgent SIP Headers Transfer (set by the SIP side's headers
	// mode; the API never sets it).
	ContextNames string `json:"contextNames,omitempty"`
}

// Transfer is the stored record. Its JSON form is the storage encoding, not
// the API shape (the control package owns that).
type Transfer struct {
	ID                     string         `json:"id"`
	Owner                  string         `json:"owner"`
	ExternalConversationID string         `json:"externalConversationId"`
	Type                   Type           `json:"type"`
	Status                 Status         `json:"status"`
	PhoneNumber            *PhoneNumber   `json:"phoneNumber,omitempty"`
	SIP                    *SIPReturn     `json:"sip,omitempty"`
	InputContext           *InputContext  `json:"inputContext,omitempty"`
	OutputContext          *OutputContext `json:"outputContext,omitempty"`
	CreatedAt              time.Time      `json:"createdAt"`
	ExpiresAt              time.Time      `json:"expiresAt"`
	CallReceivedAt         time.Time      `json:"callReceivedAt,omitzero"`
	CompletedAt            time.Time      `json:"completedAt,omitzero"`
	EndReason              EndReason      `json:"endReason,omitempty"`
	// RequestHash fingerprints the create request so a replay can be told
	// from a conflicting reuse of the id.
	RequestHash string `json:"requestHash"`
	// Claim marks the SIP call that is setting up this transfer, so a second
	// INVITE gets 486 while the first one is ringing.
	Claim *Claim `json:"claim,omitempty"`
	// Return is the outcome of handing the call back, once tried.
	Return *ReturnResult `json:"returnResult,omitempty"`
	// Node is the instance that answered the call (ONGOING and after), so a
	// surviving node can end the calls of a lost one.
	Node string `json:"node,omitempty"`
	// Inbound is what the claiming INVITE said about the call (UUI,
	// identity and history headers, X- headers), recorded with the claim.
	Inbound *Inbound `json:"inbound,omitempty"`
	// HeadersMode marks a transfer created from an INVITE's headers (the
	// SIP side's headers mode) rather than by an API call: its webhook
	// events go to the default endpoint, not to its owner's.
	HeadersMode bool `json:"headersMode,omitempty"`
}

// Results of a return.
const (
	ReturnSucceeded = "succeeded"
	ReturnFailed    = "failed"
)

// ReturnResult records how the call was handed back.
type ReturnResult struct {
	// Method is what was tried: BYE, REFER or INVITE.
	Method ReturnType `json:"method"`
	// Result is succeeded or failed.
	Result string `json:"result"`
	// SIPCode is the final SIP status that decided it (the REFER's or its
	// NOTIFY sipfrag's, or the return INVITE's), 0 when none came.
	SIPCode int `json:"sipCode,omitempty"`
	// Reason explains a failure (e.g. "refer rejected", "notify timeout").
	Reason string `json:"reason,omitempty"`
	// Fallback is the method applied after a failure, if any.
	Fallback  ReturnType `json:"fallback,omitempty"`
	StartedAt time.Time  `json:"startedAt"`
	EndedAt   time.Time  `json:"endedAt,omitzero"`
	// BridgeEndedAt is when the bridged call of an INVITE return ended.
	BridgeEndedAt time.Time `json:"bridgeEndedAt,omitzero"`
	// AgentLeg is the SIP agent leg the call was handed to, if any.
	AgentLeg *AgentLeg `json:"agentLeg,omitempty"`
}

// Claim is a SIP call's hold on an ACTIVE transfer while it is being answered.
type Claim struct {
	CallID    string    `json:"callId"`
	Node      string    `json:"node,omitempty"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Errors the store and service return; callers map them to API codes or SIP statuses.
var (
	ErrNotFound          = errors.New("transfer not found")
	ErrExists            = errors.New("transfer id already exists")
	ErrNoNumber          = errors.New("no free number for that country")
	ErrUnknownCountry    = errors.New("no numbers configured for that country")
	ErrIllegalTransition = errors.New("illegal status transition")
	ErrClaimed           = errors.New("transfer already claimed by another call")
	ErrNotActive         = errors.New("transfer is not active")
	// ErrUnavailable wraps a shared store's failure to reach its server: the
	// request may succeed if retried later (the API answers 503).
	ErrUnavailable = errors.New("store unavailable")
)

// StatusAt is the status as a reader at now sees it: an ACTIVE transfer
// past its expiry reads EXPIRED before any sweeper has stored that.
// A live claim keeps it ACTIVE past expiry: a call is being answered.
func (t *Transfer) StatusAt(now time.Time) Status {
	if t.Status == StatusActive && !now.Before(t.ExpiresAt) && !t.ClaimedAt(now, "") {
		return StatusExpired
	}
	return t.Status
}

var legal = map[Status][]Status{
	StatusActive:  {StatusOngoing, StatusExpired},
	StatusOngoing: {StatusCompleted},
}

// Transition moves t to the status to, stamping the matching timestamp. It is
// the one place that decides which moves are legal.
func (t *Transfer) Transition(to Status, now time.Time) error {
	from := t.Status
	if from == StatusActive && to == StatusOngoing && t.StatusAt(now) == StatusExpired {
		return fmt.Errorf("%w: transfer expired at %s", ErrIllegalTransition, t.ExpiresAt.Format(time.RFC3339))
	}
	ok := false
	for _, s := range legal[from] {
		if s == to {
			ok = true
			break
		}
	}
	if !ok {
		return fmt.Errorf("%w: %s -> %s", ErrIllegalTransition, from, to)
	}
	t.Status = to
	switch to {
	case StatusOngoing:
		t.CallReceivedAt = now
		if t.Claim != nil {
			t.Node = t.Claim.Node
		}
		t.Claim = nil
	case StatusCompleted:
		t.CompletedAt = now
	}
	return nil
}

// Returning reports whether t's call ended with the agent finished and the
// return (handing the call back) has not been recorded yet: the node that
// answered the call still owes its returnResult.
func (t *Transfer) Returning() bool {
	return t.Status == StatusCompleted && t.EndReason == EndAgentFinished && (t.Return == nil || t.Return.Result == "")
}

// EndedAt is when the transfer reached its final stored status: completion,
// or expiry; zero while it is ACTIVE or ONGOING.
func (t *Transfer) EndedAt() time.Time {
	switch t.Status {
	case StatusCompleted:
		return t.CompletedAt
	case StatusExpired:
		return t.ExpiresAt
	}
	return time.Time{}
}

// ClaimedAt reports whether another call holds a live claim at now.
func (t *Transfer) ClaimedAt(now time.Time, callID string) bool {
	return t.Claim != nil && t.Claim.CallID != callID && now.Before(t.Claim.ExpiresAt)
}

// Clone returns a deep copy, so callers may mutate it freely.
func (t *Transfer) Clone() *Transfer {
	c := *t
	if t.PhoneNumber != nil {
		p := *t.PhoneNumber
		c.PhoneNumber = &p
	}
	if t.SIP != nil {
		s := *t.SIP
		if t.SIP.Auth != nil {
			a := *t.SIP.Auth
			s.Auth = &a
		}
		c.SIP = &s
	}
	if t.InputContext != nil {
		in := *t.InputContext
		in.InputVariables = cloneMap(t.InputContext.InputVariables)
		c.InputContext = &in
	}
	if t.OutputContext != nil {
		out := *t.OutputContext
		out.ReferenceVariables = cloneMap(t.OutputContext.ReferenceVariables)
		out.TransferVariables = cloneMap(t.OutputContext.TransferVariables)
		c.OutputContext = &out
	}
	if t.Claim != nil {
		cl := *t.Claim
		c.Claim = &cl
	}
	if t.Return != nil {
		r := *t.Return
		if t.Return.AgentLeg != nil {
			l := *t.Return.AgentLeg
			r.AgentLeg = &l
		}
		c.Return = &r
	}
	c.Inbound = t.Inbound.Clone()
	return &c
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

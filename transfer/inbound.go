package transfer

import "maps"

// Inbound is what the INVITE that claimed the transfer said about its call
// besides the transfer: its User-to-User data, the identity and history
// headers, the contact-center platforms' call ids and the X- headers the
// agent received. The SIP side fills it (bounded and free of control
// characters) when the call claims the transfer; the API shows it as the
// sip.inbound extension of GET.
type Inbound struct {
	CallID string `json:"callId,omitempty"`
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
	// UUI lists the User-to-User values kept, the one the agent gets first.
	UUI []UUI `json:"uui,omitempty"`
	// The identity and history headers, one entry per value as received.
	AssertedIdentity []string `json:"pAssertedIdentity,omitempty"`
	Diversion        []string `json:"diversion,omitempty"`
	HistoryInfo      []string `json:"historyInfo,omitempty"`
	CallInfo         []string `json:"callInfo,omitempty"`
	// CallIDs are the platforms' own call ids by header name
	// (X-Genesys-CallUUID, X-Amzn-ConnectContactId, Cisco-GUID, …).
	CallIDs map[string]string `json:"callIds,omitempty"`
	// Headers are the X- headers the agent received, by name as received.
	Headers map[string]string `json:"headers,omitempty"`
}

// UUI is one User-to-User value (RFC 7433) as Handoff read it.
type UUI struct {
	// Header is the header it came in: User-to-User or x-User-to-User.
	Header string `json:"header"`
	// Value is the header value exactly as received, parameters included.
	Value string `json:"value"`
	// Encoding is hex (also when the parameter is absent) or ascii.
	Encoding string `json:"encoding"`
	// Purpose is the UUI package; isdn-uui when the parameter is absent.
	Purpose string `json:"purpose"`
	Content string `json:"content,omitempty"`
	// PD is the ISDN protocol discriminator (two hex digits) when there is
	// one: from a pd= parameter, or the first octet of the data.
	PD string `json:"pd,omitempty"`
	// Text is the payload (after the discriminator) when it is printable
	// ASCII.
	Text string `json:"text,omitempty"`
	// UCID is Avaya's Universal Call ID in its 20-digit form, when the
	// payload carries one.
	UCID string `json:"ucid,omitempty"`
}

// PrimaryUUI is the UUI value the agent receives (the first kept), or nil.
func (in *Inbound) PrimaryUUI() *UUI {
	if in == nil || len(in.UUI) == 0 {
		return nil
	}
	return &in.UUI[0]
}

// Clone returns a deep copy.
func (in *Inbound) Clone() *Inbound {
	if in == nil {
		return nil
	}
	c := *in
	c.UUI = append([]UUI(nil), in.UUI...)
	c.AssertedIdentity = append([]string(nil), in.AssertedIdentity...)
	c.Diversion = append([]string(nil), in.Diversion...)
	c.HistoryInfo = append([]string(nil), in.HistoryInfo...)
	c.CallInfo = append([]string(nil), in.CallInfo...)
	c.CallIDs = maps.Clone(in.CallIDs)
	c.Headers = maps.Clone(in.Headers)
	return &c
}

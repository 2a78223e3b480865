package sip

import (
	"log/slog"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/transfer"
)

// Bounds on what an INVITE's context headers may put in a transfer record
// and in the agent's start event. A value past maxInboundValue, or holding
// a control character, is left out (and logged), never cut.
const (
	maxInboundValue   = 1024 // bytes of one header value
	maxInboundEntries = 10   // values kept per identity or history header
	maxInboundHeaders = 50   // X- headers kept
)

// platformCallIDs are the contact-center platforms' own call ids, by
// header name: Genesys Cloud (X-Genesys-CallUUID on the first INVITE),
// Amazon Connect (as LiveKit SIP maps them), Cisco UCCE/CVP.
var platformCallIDs = []string{
	"X-Genesys-CallUUID",
	"X-Amzn-ConnectContactId", "X-Amzn-ConnectInitialContactId",
	"X-Amzn-SourceAccount", "X-Amzn-SourceArn", "X-Amzn-TargetArn",
	"Cisco-GUID", "Cisco-GUCID",
}

// readInbound is what req says about its call besides the transfer: UUI,
// identity and history headers, platform call ids and X- headers, bounded
// and free of control characters. Ignored UUI values are counted.
func (s *Server) readInbound(req *sip.Request, log *slog.Logger) *transfer.Inbound {
	dropped := 0
	keep := func(v string) bool {
		ok := len(v) <= maxInboundValue && !hasControl(v)
		if !ok {
			dropped++
		}
		return ok
	}
	in := &transfer.Inbound{CallID: callID(req)}
	if f := req.From(); f != nil {
		in.From = f.Address.String()
	}
	if to := req.To(); to != nil {
		in.To = to.Address.String()
	}
	in.UUI = readUUI(req, func(reason, header string, size int) {
		s.metrics.uuiIgnored.WithLabelValues(reason).Inc()
		log.Info("User-to-User value ignored", "reason", reason, "header", header, "bytes", size)
	})
	in.AssertedIdentity = headerList(req, "P-Asserted-Identity", keep)
	in.Diversion = headerList(req, "Diversion", keep)
	in.HistoryInfo = headerList(req, "History-Info", keep)
	in.CallInfo = headerList(req, "Call-Info", keep)
	in.CallIDs = callIDsOf(req, keep)
	in.Headers = xHeaders(req, keep)
	if dropped > 0 {
		log.Info("INVITE header values left out: over-long or with control characters", "count", dropped, "limit_bytes", maxInboundValue)
	}
	return in
}

// headerList is every value of the headers called name (one header may
// list several, comma-separated), at most maxInboundEntries.
func headerList(req *sip.Request, name string, keep func(string) bool) []string {
	var out []string
	for _, h := range req.GetHeaders(name) {
		for _, v := range splitOutside(h.Value(), ',') {
			if v != "" && len(out) < maxInboundEntries && keep(v) {
				out = append(out, v)
			}
		}
	}
	return out
}

func callIDsOf(req *sip.Request, keep func(string) bool) map[string]string {
	var out map[string]string
	for _, name := range platformCallIDs {
		if h := req.GetHeader(name); h != nil && h.Value() != "" && keep(h.Value()) {
			if out == nil {
				out = map[string]string{}
			}
			out[name] = h.Value()
		}
	}
	return out
}

// xHeaders are the INVITE's X- headers by name as received (for a name
// sent twice, the last), at most maxInboundHeaders.
func xHeaders(req *sip.Request, keep func(string) bool) map[string]string {
	out := map[string]string{}
	for _, h := range req.Headers() {
		name := h.Name()
		if len(name) > 2 && (name[0] == 'X' || name[0] == 'x') && name[1] == '-' {
			if _, seen := out[name]; (seen || len(out) < maxInboundHeaders) && keep(h.Value()) {
				out[name] = h.Value()
			}
		}
	}
	return out
}

// Keys of the agent's identity parameters (start.customParameters and
// start.handoff.identity; docs/agent-protocol.md).
const (
	keyAssertedIdentity = "asserted_identity"
	keyAssertedNumber   = "asserted_number"
	keyDiversion        = "diversion"
	keyDiversionNumber  = "diversion_number"
	keyHistoryInfo      = "history_info"
	keyCallInfo         = "call_info"
	keyAvayaUCID        = "avaya_ucid"
)

// identityParams is what the agent learns of the call's identity and
// history: each header's values joined as SIP lists them, the number of
// the first asserted identity and of the most recent diversion, Avaya's
// UCID, and the platform call ids that are not X- headers (those reach it
// with the other X- headers) under their header names.
func identityParams(in *transfer.Inbound) map[string]string {
	p := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			p[k] = v
		}
	}
	set(keyAssertedIdentity, strings.Join(in.AssertedIdentity, ", "))
	set(keyAssertedNumber, firstNumber(in.AssertedIdentity))
	set(keyDiversion, strings.Join(in.Diversion, ", "))
	set(keyDiversionNumber, firstNumber(in.Diversion[:min(1, len(in.Diversion))]))
	set(keyHistoryInfo, strings.Join(in.HistoryInfo, ", "))
	set(keyCallInfo, strings.Join(in.CallInfo, ", "))
	for _, u := range in.UUI {
		if p[keyAvayaUCID] == "" {
			set(keyAvayaUCID, u.UCID)
		}
	}
	for name, v := range in.CallIDs {
		if !strings.HasPrefix(name, "X-") {
			set(name, v)
		}
	}
	return p
}

// firstNumber is the telephone number (or user) of the first value that
// has one.
func firstNumber(values []string) string {
	for _, v := range values {
		if n := agent.PhoneNumber(addrURI(v)); n != "" && !hasControl(n) {
			return n
		}
	}
	return ""
}

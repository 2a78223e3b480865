package sip

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/transfer"
)

// ContextNamesGA is transfer.SIPReturn.ContextNames for the X-GA- names of
// the GenerativeAgent "SIP Headers Transfer" (docs/returns.md).
const ContextNamesGA = "ga"

// gaMaxContextBytes is that mode's documented limit on all context data.
const gaMaxContextBytes = 1024

// maxUUIHex bounds the hex data of the outcome as User-to-User: Genesys
// advises 128 characters or fewer (longer may be discarded), ISDN carries
// at most 128 octets and Cisco CVP passes 210 bytes of SIP headers on.
const maxUUIHex = 128

// uuiIA5 is the ISDN protocol discriminator of the outcome's UUI: IA5
// characters (Q.931 table 4-26). Receivers that drop the first octet, as
// Genesys does, drop this one, not data.
const uuiIA5 = 0x04

// returnContext is what a return carries back beside the call: the
// outcome's fields in order, before the cap, and a User-to-User value.
type returnContext struct {
	fields []field
	uui    *field // User-to-User (or the alias it came in); nil for none
	budget int    // bytes of encoded context (name=escaped value, joined)
	marker string // added when fields were left out; "" adds none
	// lowerParams lower-cases the names when they ride as URI parameters.
	lowerParams bool
	// id is the return INVITE's X-Handoff-Transfer-Id (Handoff's names
	// only; outside the cap).
	id *field
}

// newReturnContext is what the return of t carries for the outcome out:
// Handoff's X-Handoff- names or the X-GA- names, and the User-to-User
// value: the outcome itself with context_encoding uui, else the inbound
// UUI passed through when cfg says so.
func newReturnContext(t *transfer.Transfer, out transfer.OutputContext, cfg ReturnConfig) returnContext {
	rc := returnContext{budget: cfg.MaxContextBytes}
	if t.SIP != nil && t.SIP.ContextNames == ContextNamesGA {
		rc.fields = gaFields(t, out)
		rc.budget = min(rc.budget, gaMaxContextBytes)
	} else {
		rc.fields = handoffFields(out)
		rc.marker, rc.lowerParams = hdrTruncated, true
		rc.id = &field{"X-Handoff-Transfer-Id", t.ID}
	}
	switch u := t.Inbound.PrimaryUUI(); {
	case cfg.ContextEncoding == ContextUUI:
		if v := outcomeUUI(out); v != "" {
			rc.uui = &field{hdrUUI, v}
		}
	case cfg.UUIPassthrough && u != nil:
		rc.uui = &field{u.Header, u.Value}
	}
	return rc
}

// handoffFields is the outcome under Handoff's names: the transfer type
// and task first, then the transfer variables by key. Empty values are
// left off: "X-Handoff-Var-digits=" tells the IVR nothing a missing
// variable does not, and some parse it as a malformed header.
func handoffFields(out transfer.OutputContext) []field {
	var f []field
	add := func(name, v string) {
		if v != "" {
			f = append(f, field{name, v})
		}
	}
	add("X-Handoff-Transfer-Type", out.TransferType)
	add("X-Handoff-Task", out.CurrentTaskName)
	return append(f, variables("X-Handoff-Var-", out.TransferVariables)...)
}

// gaFields is the outcome under the X-GA- names, in the order that mode
// adds them: the conversation id, the transfer type, the transfer
// variables, then the reference variables.
func gaFields(t *transfer.Transfer, out transfer.OutputContext) []field {
	var f []field
	if t.ExternalConversationID != "" {
		f = append(f, field{"X-GA-extConId", t.ExternalConversationID})
	}
	if out.TransferType != "" {
		f = append(f, field{"X-GA-transfer", out.TransferType})
	}
	f = append(f, variables("X-GA-tv-", out.TransferVariables)...)
	return append(f, variables("X-GA-rv-", out.ReferenceVariables)...)
}

// outcomeUUI is the outcome as a User-to-User value (context_encoding
// uui): the pairs transfer=<type>&task=<task>&<key>=<value>… (values
// percent-escaped), after the IA5 discriminator octet, hex-encoded, within
// maxUUIHex hex digits. Pairs past the cap are dropped whole, in order.
func outcomeUUI(out transfer.OutputContext) string {
	pairs := []field{{"transfer", out.TransferType}, {"task", out.CurrentTaskName}}
	pairs = append(pairs, variables("", out.TransferVariables)...)
	payload := []byte{uuiIA5}
	for _, p := range pairs {
		if p.value == "" {
			continue
		}
		pair := p.name + "=" + escapeURIValue(p.value)
		if len(payload) > 1 {
			pair = "&" + pair
		}
		if 2*(len(payload)+len(pair)) > maxUUIHex {
			break
		}
		payload = append(payload, pair...)
	}
	if len(payload) == 1 {
		return ""
	}
	return strings.ToUpper(hex.EncodeToString(payload)) + ";encoding=hex"
}

// fit is what rides within the budget: the UUI first (it is the IVR's own
// correlation data), then the fields until one does not fit, then the
// marker if any were left out. has says which names the return URI
// already carries: those are not added again.
func (rc returnContext) fit(has func(name string) bool) (uui *field, fields []field) {
	budget := rc.budget
	if rc.uui != nil && !has(rc.uui.name) {
		if n := encodedLen(*rc.uui); n <= budget {
			uui, budget = rc.uui, budget-n
		}
	}
	var fresh []field
	for _, f := range rc.fields {
		if !has(f.name) {
			fresh = append(fresh, f)
		}
	}
	fields, cut := within(fresh, budget, encodedLen)
	if cut && rc.marker != "" {
		fields = append(fields, field{rc.marker, "true"})
	}
	return uui, fields
}

// encodedLen is f's size on a URI: name=escaped value and a separator.
func encodedLen(f field) int { return len(f.name) + 1 + len(escapeURIValue(f.value)) + 1 }

// withContext attaches rc to uri, the returnUri: the URI stays exactly as
// given (user part, parameters and its own URI headers, such as Genesys's
// ?User-to-User=00FA1B2C%3Bencoding%3Dhex) and Handoff's fields follow
// its own, as URI headers (?X-Handoff-Transfer-Type=AGENT&…) or, with
// ContextParams, parameters (;x-handoff-transfer-type=AGENT). The UUI is
// always a URI header: Genesys reads UUI on a REFER only there. A name
// the URI already carries (case-insensitive) is not added again.
func withContext(uri string, rc returnContext, enc ContextEncoding) (string, error) {
	var u sip.Uri
	if err := sip.ParseUri(uri, &u); err != nil {
		return "", fmt.Errorf("returnUri: %w", err)
	}
	base, query, _ := strings.Cut(uri, "?")
	asParams := enc == ContextParams
	headers, params := uriHeaderNames(query), uriParamNames(base)
	uui, fields := rc.fit(func(name string) bool {
		if asParams && !strings.EqualFold(name, hdrUUI) && !strings.EqualFold(name, hdrUUIAlias) {
			return params[strings.ToLower(name)]
		}
		return headers[strings.ToLower(name)]
	})
	var addParams, addHeaders []string
	if uui != nil {
		addHeaders = append(addHeaders, uui.name+"="+escapeURIValue(uui.value))
	}
	for _, f := range fields {
		switch {
		case !asParams:
			addHeaders = append(addHeaders, f.name+"="+escapeURIValue(f.value))
		case rc.lowerParams:
			addParams = append(addParams, strings.ToLower(f.name)+"="+escapeURIValue(f.value))
		default:
			addParams = append(addParams, f.name+"="+escapeURIValue(f.value))
		}
	}
	return joinURI(base, query, addParams, addHeaders), nil
}

// joinURI is base with params appended, then "?" and query (verbatim)
// with headers appended.
func joinURI(base, query string, params, headers []string) string {
	var b strings.Builder
	b.WriteString(base)
	for _, p := range params {
		b.WriteString(";" + p)
	}
	if query != "" || len(headers) > 0 {
		b.WriteString("?" + query)
	}
	for i, h := range headers {
		if i > 0 || query != "" {
			b.WriteByte('&')
		}
		b.WriteString(h)
	}
	return b.String()
}

// uriHeaderNames are the lower-cased names of a URI's headers (the part
// after "?").
func uriHeaderNames(query string) map[string]bool {
	names := map[string]bool{}
	for _, h := range strings.Split(query, "&") {
		name, _, _ := strings.Cut(h, "=")
		if n, err := url.PathUnescape(name); err == nil {
			name = n
		}
		names[strings.ToLower(name)] = true
	}
	return names
}

// uriParamNames are the lower-cased names of the URI parameters of base
// (a URI without its headers). The user part may hold ";" (user
// parameters such as ;npdi), so parameters start after the host.
func uriParamNames(base string) map[string]bool {
	names := map[string]bool{}
	hostPart := base
	if at := strings.LastIndexByte(base, '@'); at >= 0 {
		hostPart = base[at:]
	}
	_, params, _ := strings.Cut(hostPart, ";")
	for _, p := range strings.Split(params, ";") {
		name, _, _ := strings.Cut(p, "=")
		names[strings.ToLower(name)] = true
	}
	return names
}

// escapeURIValue percent-escapes everything but unreserved characters, so
// a value is safe as a URI header or parameter value (RFC 3261 §25.1).
func escapeURIValue(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		ch := v[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.IndexByte("-_.~", ch) >= 0 {
			b.WriteByte(ch)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", ch)
	}
	return b.String()
}

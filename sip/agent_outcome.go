package sip

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/transfer"
)

// The outcome a SIP agent ends with, in headers of its BYE or REFER, or
// in the headers of its Refer-To URI. These names are fixed (issue 16):
// outside checks rely on them. X-Handoff-Task and X-Handoff-Var- are the
// headers mode's names (headers_mode.go).
const (
	hdrTransferType = "X-Handoff-Transfer-Type"
	hdrRefPrefix    = "X-Handoff-Ref-"
)

// maxInfoBody bounds the JSON body of an outcome INFO.
const maxInfoBody = 64 << 10

var (
	errNoReferTo     = errors.New("no usable Refer-To")
	errNoOutput      = errors.New(`JSON body has no "outputContext" object`)
	errInfoTooLarge  = errors.New("JSON body too large")
	errNotOutcomeURI = errors.New("Refer-To is not a sip:, sips: or tel: URI")
)

// readOutcome reads an outcome from X-Handoff- name/value pairs, later
// pairs winning; values are percent-unescaped and bounded as in headers
// mode. found reports whether any outcome field was there; an outcome
// without X-Handoff-Transfer-Type is SYSTEM, as for handoff.complete.
func readOutcome(fields []field) (out transfer.OutputContext, found bool) {
	for _, f := range fields {
		name, value := f.name, headerValue(f.value)
		switch {
		case strings.EqualFold(name, hdrTransferType):
			out.TransferType, found = value, true
		case strings.EqualFold(name, hdrTask):
			out.CurrentTaskName, found = value, true
		case hasPrefixFold(name, hdrVarPrefix):
			found = putVar(&out.TransferVariables, name[len(hdrVarPrefix):], value) || found
		case hasPrefixFold(name, hdrRefPrefix):
			found = putVar(&out.ReferenceVariables, name[len(hdrRefPrefix):], value) || found
		}
	}
	if found && out.TransferType == "" {
		out.TransferType = agent.TransferSystem
	}
	return out, found
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) > len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// putVar sets (*m)[k] = v within the headers-mode bound on variables.
func putVar(m *map[string]string, k, v string) bool {
	if *m == nil {
		*m = map[string]string{}
	}
	if _, ok := (*m)[k]; !ok && len(*m) >= maxHeaderVars {
		return false
	}
	(*m)[k] = v
	return true
}

// headerFields lists a request's headers as name/value pairs.
func headerFields(req *sip.Request) []field {
	hs := req.Headers()
	out := make([]field, 0, len(hs))
	for _, h := range hs {
		out = append(out, field{h.Name(), h.Value()})
	}
	return out
}

// byeOutcome is the outcome in the headers of the agent's BYE, if any.
func byeOutcome(req *sip.Request) (transfer.OutputContext, bool) {
	return readOutcome(headerFields(req))
}

// referOutcome reads a REFER from the agent: its target (the Refer-To
// URI, headers and all) and the outcome from the Refer-To URI's headers,
// and from X-Handoff- headers of the REFER itself where the URI has none
// (LiveKit's TransferSIPParticipant sends its headers that way). The
// target without its headers is kept as referenceVariables.referTo.
func referOutcome(req *sip.Request) (target string, out transfer.OutputContext, err error) {
	h := req.GetHeader("Refer-To")
	if h == nil {
		h = req.GetHeader("r") // compact form, which sipgo does not map
	}
	if h == nil {
		return "", out, errNoReferTo
	}
	var u sip.Uri
	params := sip.NewParams()
	if _, err := sip.ParseAddressValue(h.Value(), &u, &params); err != nil {
		return "", out, errNoReferTo
	}
	if u.Scheme != "sip" && u.Scheme != "sips" && u.Scheme != "tel" {
		return "", out, errNotOutcomeURI
	}
	fields := headerFields(req)
	for _, kv := range u.Headers {
		fields = append(fields, field{kv.K, kv.V})
	}
	out, _ = readOutcome(fields)
	if out.TransferType == "" {
		out.TransferType = agent.TransferSystem
	}
	target = u.String()
	u.Headers = nil
	if _, ok := out.ReferenceVariables["referTo"]; !ok {
		putVar(&out.ReferenceVariables, "referTo", u.String())
	}
	return target, out, nil
}

// infoOutcome reads the JSON body of an outcome INFO:
// {"outputContext": {"transferType": ..., "currentTaskName": ...,
// "referenceVariables": {...}, "transferVariables": {...}}}, bounded like
// the header forms.
func infoOutcome(body []byte) (transfer.OutputContext, error) {
	if len(body) > maxInfoBody {
		return transfer.OutputContext{}, errInfoTooLarge
	}
	var msg struct {
		OutputContext *transfer.OutputContext `json:"outputContext"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return transfer.OutputContext{}, err
	}
	if msg.OutputContext == nil {
		return transfer.OutputContext{}, errNoOutput
	}
	in := *msg.OutputContext
	out := transfer.OutputContext{
		TransferType:    bounded(in.TransferType),
		CurrentTaskName: bounded(in.CurrentTaskName),
	}
	boundVars(&out.TransferVariables, in.TransferVariables)
	boundVars(&out.ReferenceVariables, in.ReferenceVariables)
	if out.TransferType == "" {
		out.TransferType = agent.TransferSystem
	}
	return out, nil
}

func bounded(v string) string {
	if len(v) > maxHeaderValueLen {
		v = v[:maxHeaderValueLen]
	}
	return v
}

// boundVars copies the first maxHeaderVars variables of in (by key) to
// *out, values bounded.
func boundVars(out *map[string]string, in map[string]string) {
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		putVar(out, k, bounded(in[k]))
	}
}

// isJSON reports whether a request's body is application/json.
func isJSON(req *sip.Request) bool {
	h := req.ContentType()
	if h == nil {
		return false
	}
	ct, _, _ := strings.Cut(h.Value(), ";")
	return strings.EqualFold(strings.TrimSpace(ct), "application/json")
}

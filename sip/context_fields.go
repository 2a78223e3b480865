package sip

import (
	"maps"
	"slices"
	"strings"
)

// What the returns and the SIP agent leg put on the wire of a transfer's
// context, and read back from an agent's outcome: name/value fields, cut
// to a byte budget.

// hdrTruncated marks context cut to its budget, on a return URI and on
// the agent leg's INVITE.
const hdrTruncated = "X-Handoff-Truncated"

// field is one name and value of a transfer's context.
type field struct{ name, value string }

// variables are the non-empty entries of vars as fields named prefix+key
// (the key made a token), in key order.
func variables(prefix string, vars map[string]string) []field {
	var f []field
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		if v := vars[k]; v != "" {
			f = append(f, field{prefix + tokenize(k), v})
		}
	}
	return f
}

// within keeps the leading fields whose sizes add up to at most budget,
// and reports whether any was left off.
func within(fields []field, budget int, size func(field) int) ([]field, bool) {
	total := 0
	for i, f := range fields {
		if total += size(f); total > budget {
			return fields[:i], true
		}
	}
	return fields, false
}

// headerLen is f's size as a header line: "name: value" and CRLF.
func headerLen(f field) int { return len(f.name) + len(f.value) + 4 }

// tokenize makes a variable name safe as part of a header name.
func tokenize(k string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, k)
}

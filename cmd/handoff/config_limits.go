package main

import (
	"math"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/handoff/handoff/sip"
)

// validateLimits checks sip.limits and sip.overload (admission control).
func (s *SIPConfig) validateLimits(v *validation) {
	l := &s.Limits
	for _, n := range []*int{&l.MaxCalls, &l.PerSourceMaxCalls, &s.Overload.MaxPending} {
		if *n < 0 {
			v.bad(n, "must not be negative (0 is unlimited), got %d", *n)
		}
	}
	for _, r := range []*float64{&l.MaxCPS, &l.PerSourceMaxCPS} {
		if *r < 0 || math.IsNaN(*r) || math.IsInf(*r, 0) {
			v.bad(r, "must be a number of calls per second, 0 or more (0 is unlimited), got %v", *r)
		}
	}
	if l.RetryAfter < time.Second {
		v.bad(&l.RetryAfter, "must be at least 1s (Retry-After is in whole seconds), got %s", l.RetryAfter)
	}
	v.notNegative(&s.Overload.MaxLatency, " (0 turns it off)")
	v.notNegative(&s.Overload.MaxQueueDelay, " (0 turns it off)")
	s.validateTrunks(v)
}

// validateTrunks checks the trunks' names and CIDRs; a source may belong
// to one trunk only.
func (s *SIPConfig) validateTrunks(v *validation) {
	trunks := s.Limits.Trunks
	names := make([]string, 0, len(trunks))
	for name := range trunks {
		names = append(names, name)
	}
	sort.Strings(names)
	seen := map[netip.Prefix]string{}
	for _, name := range names {
		if name == "" || strings.ContainsAny(name, " \t\r\n") {
			v.bad(&s.Limits.Trunks, "%q: a trunk needs a name without spaces", name)
		}
		if len(trunks[name]) == 0 {
			v.bad(&s.Limits.Trunks, "trunk %q has no CIDR", name)
		}
		for _, c := range trunks[name] {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				v.bad(&s.Limits.Trunks, "trunk %q: %q is not a CIDR prefix (e.g. 203.0.113.0/28)", name, c)
				continue
			}
			p = p.Masked()
			for q, other := range seen {
				if other != name && q.Overlaps(p) {
					v.bad(&s.Limits.Trunks, "trunk %q: %s overlaps %s of trunk %q", name, p, q, other)
				}
			}
			seen[p] = name
		}
	}
}

// admission is sip.limits and sip.overload as the SIP server takes them
// (valid after Load).
func (s *SIPConfig) admission() (sip.Limits, sip.OverloadConfig) {
	l := s.Limits
	var trunks map[string][]netip.Prefix
	for name, cidrs := range l.Trunks {
		if trunks == nil {
			trunks = map[string][]netip.Prefix{}
		}
		for _, c := range cidrs {
			if p, err := netip.ParsePrefix(c); err == nil {
				trunks[name] = append(trunks[name], p.Masked())
			}
		}
	}
	limits := sip.Limits{MaxCalls: l.MaxCalls, MaxCPS: l.MaxCPS, PerSourceMaxCalls: l.PerSourceMaxCalls,
		PerSourceMaxCPS: l.PerSourceMaxCPS, Trunks: trunks, RetryAfter: l.RetryAfter}
	return limits, sip.OverloadConfig{MaxPending: s.Overload.MaxPending, MaxLatency: s.Overload.MaxLatency,
		MaxQueueDelay: s.Overload.MaxQueueDelay}
}

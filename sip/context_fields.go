package sip

import "slices"

// Helpers the INVITE return and the SIP agent leg share to put a
// transfer's context on the wire.

// varFields are variables as name/value pairs: prefix and the key (made a
// token) by key order, empty values left off.
func varFields(prefix string, vars map[string]string) [][2]string {
	keys := make([]string, 0, len(vars))
	for k, v := range vars {
		if v != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	f := make([][2]string, 0, len(keys))
	for _, k := range keys {
		f = append(f, [2]string{prefix + tokenize(k), vars[k]})
	}
	return f
}

// fitWithin keeps the leading items whose sizes add up to at most max,
// and reports whether any was left off.
func fitWithin[T any](items []T, max int, size func(T) int) ([]T, bool) {
	total := 0
	for i, it := range items {
		if total += size(it); total > max {
			return items[:i], true
		}
	}
	return items, false
}

package transfer

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// MaxRangeSize bounds one configured range, so a typo cannot allocate millions.
const MaxRangeSize = 100000

var (
	e164    = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
	country = regexp.MustCompile(`^[A-Z]{2}$`)
)

// ExpandPools turns the configured pools (country -> entries, each an E.164
// number or a range "+A-+B" of numbers of equal length) into plain lists,
// rejecting bad entries and numbers listed twice.
func ExpandPools(pools map[string][]string) (map[string][]string, error) {
	out := make(map[string][]string, len(pools))
	seen := map[string]string{}
	for cc, entries := range pools {
		if !country.MatchString(cc) {
			return nil, fmt.Errorf("numbers.pools: %q is not an ISO 3166 alpha-2 country code", cc)
		}
		for _, e := range entries {
			numbers, err := expandEntry(strings.TrimSpace(e))
			if err != nil {
				return nil, fmt.Errorf("numbers.pools.%s: %w", cc, err)
			}
			for _, n := range numbers {
				if prev, dup := seen[n]; dup {
					return nil, fmt.Errorf("numbers.pools: %s is listed for %s and %s", n, prev, cc)
				}
				seen[n] = cc
			}
			out[cc] = append(out[cc], numbers...)
		}
	}
	return out, nil
}

func expandEntry(e string) ([]string, error) {
	from, to, isRange := strings.Cut(e, "-")
	if !isRange {
		if !e164.MatchString(e) {
			return nil, fmt.Errorf("%q is not an E.164 number (+ and up to 15 digits)", e)
		}
		return []string{e}, nil
	}
	if !e164.MatchString(from) || !e164.MatchString(to) || len(from) != len(to) {
		return nil, fmt.Errorf("%q is not a range of two E.164 numbers of equal length", e)
	}
	// At most 15 digits: the numbers fit in a uint64.
	a, _ := strconv.ParseUint(from[1:], 10, 64)
	b, _ := strconv.ParseUint(to[1:], 10, 64)
	if b < a {
		return nil, fmt.Errorf("range %q runs backwards", e)
	}
	if b-a > MaxRangeSize-1 {
		return nil, fmt.Errorf("range %q holds more than %d numbers", e, MaxRangeSize)
	}
	// E.164 numbers start with 1-9 and both ends have the same length, so
	// every number between them has that length too: no padding.
	out := make([]string, 0, b-a+1)
	buf := []byte{'+'}
	for n := a; n <= b; n++ {
		buf = strconv.AppendUint(buf[:1], n, 10)
		out = append(out, string(buf))
	}
	return out, nil
}

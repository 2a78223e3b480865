package transfer

import (
	"fmt"
	"math/big"
	"regexp"
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
				out[cc] = append(out[cc], n)
			}
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
	a, _ := new(big.Int).SetString(from[1:], 10)
	b, _ := new(big.Int).SetString(to[1:], 10)
	size := new(big.Int).Sub(b, a)
	if size.Sign() < 0 {
		return nil, fmt.Errorf("range %q runs backwards", e)
	}
	if size.Cmp(big.NewInt(MaxRangeSize-1)) > 0 {
		return nil, fmt.Errorf("range %q holds more than %d numbers", e, MaxRangeSize)
	}
	width := len(from) - 1
	var out []string
	for n := new(big.Int).Set(a); n.Cmp(b) <= 0; n.Add(n, big.NewInt(1)) {
		out = append(out, fmt.Sprintf("+%0*s", width, n.String()))
	}
	return out, nil
}

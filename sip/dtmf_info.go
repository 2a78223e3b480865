package sip

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/agent"
)

var errNotDTMF = errors.New("INFO body is not DTMF")

// parseInfoDTMF reads a key press from a SIP INFO body: application/dtmf-relay
// ("Signal=5\r\nDuration=160") or application/dtmf ("5").
func parseInfoDTMF(req *sip.Request) (agent.DTMF, error) {
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = strings.ToLower(strings.TrimSpace(strings.SplitN(h.Value(), ";", 2)[0]))
	}
	body := string(req.Body())
	d := agent.DTMF{Source: "info"}
	var signal string
	switch ct {
	case "application/dtmf-relay":
		for _, line := range strings.FieldsFunc(body, func(r rune) bool { return r == '\n' || r == '\r' }) {
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "signal":
				signal = strings.TrimSpace(v)
			case "duration":
				if ms, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && ms > 0 {
					d.Duration = time.Duration(ms) * time.Millisecond
				}
			}
		}
	case "application/dtmf":
		signal = strings.TrimSpace(body)
	default:
		return d, errNotDTMF
	}
	digit, ok := dtmfDigit(signal)
	if !ok {
		return d, errNotDTMF
	}
	d.Digit = digit
	return d, nil
}

func dtmfDigit(s string) (rune, bool) {
	switch s {
	case "10":
		return '*', true
	case "11":
		return '#', true
	}
	if len(s) != 1 {
		return 0, false
	}
	r := rune(strings.ToUpper(s)[0])
	if (r >= '0' && r <= '9') || r == '*' || r == '#' || (r >= 'A' && r <= 'D') {
		return r, true
	}
	return 0, false
}

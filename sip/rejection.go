package sip

import (
	"strconv"

	"github.com/emiago/sipgo/sip"
)

// rejection is a final non-2xx answer to a request we refuse: its SIP
// status, reason phrase and the headers that explain it (Retry-After,
// WWW-Authenticate, Warning, Min-SE). Functions that decide whether a
// request goes on return one, nil meaning "go on". It is an error so it
// can be logged as one.
type rejection struct {
	status  int
	reason  string
	headers []sip.Header
}

func reject(status int, reason string, headers ...sip.Header) *rejection {
	return &rejection{status: status, reason: reason, headers: headers}
}

func (r *rejection) Error() string { return strconv.Itoa(r.status) + " " + r.reason }

// unavailable is 503 with our Retry-After: the request may succeed later.
func (s *Server) unavailable(reason string) *rejection {
	return reject(sip.StatusServiceUnavailable, reason, s.retryAfter())
}

// refuse answers req with r.
func (s *Server) refuse(req *sip.Request, tx sip.ServerTransaction, r *rejection) {
	s.respond(req, tx, r.status, r.reason, r.headers...)
}

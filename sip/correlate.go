package sip

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/transfer"
)

// Where an INVITE can name its transfer, as logs and refusals say it.
const (
	byHeader     = "the transfer header"
	byCallInfo   = "Call-Info"
	byUUI        = "User-to-User"
	byRequestURI = "the Request-URI"
)

// A Call-Info value that names a transfer: <sip:ID@host> (the
// sip.transferUri the API returned) or <urn:handoff:transfer:ID>, with
// this purpose (RFC 3261 §20.9 lets purpose be any token).
const (
	callInfoPurpose   = "handoff-transfer"
	transferURNPrefix = "urn:handoff:transfer:"
)

// maxIDCandidates bounds the store lookups one INVITE's headers can cause.
const maxIDCandidates = 8

// candidate is a transfer id an INVITE carries, and where.
type candidate struct{ source, id string }

// match is a transfer an INVITE named, and where.
type match struct {
	source string
	t      *transfer.Transfer
}

// ambiguousError: the INVITE names two different transfers.
type ambiguousError struct{ first, second match }

func (e *ambiguousError) Error() string {
	return "the INVITE names two transfers: by " + e.first.source + " and by " + e.second.source
}

// correlate finds the transfer an INVITE is for. Every place that can
// name one is read: the transfer header, a Call-Info with purpose
// handoff-transfer, a User-to-User value whose text is a transfer id, and
// the Request-URI user part (a SIP transfer id, else a dialled number
// leased to a PHONE_NUMBER transfer). They must agree: two different live
// transfers (ACTIVE or ONGOING) is an *ambiguousError, never a guess. A
// transfer that has ended counts only when no live one is named (its
// claim then refuses the call), so data that happens to spell an old id
// refuses nothing. Headers mode creates its transfer only when nothing
// else named one.
func (s *Server) correlate(ctx context.Context, req *sip.Request, in *transfer.Inbound) (*transfer.Transfer, error) {
	var found, ended *match
	now := s.svc.Now()
	note := func(source string, t *transfer.Transfer, err error) error {
		switch {
		case errors.Is(err, transfer.ErrNotFound):
		case err != nil:
			return err
		case !live(t, now):
			if ended == nil {
				ended = &match{source, t}
			}
		case found == nil:
			found = &match{source, t}
		case found.t.ID != t.ID:
			return &ambiguousError{*found, match{source, t}}
		}
		return nil
	}
	for _, c := range s.idCandidates(req, in) {
		t, err := s.lookupSIP(ctx, c.id)
		if err := note(c.source, t, err); err != nil {
			return nil, err
		}
	}
	user := requestUser(req)
	if m := s.cfg.HeadersMode; m.Enabled && user == m.User {
		if found == nil {
			return s.createFromHeaders(ctx, req)
		}
		return found.t, nil
	}
	t, err := s.findByUser(ctx, user)
	if err := note(byRequestURI, t, err); err != nil {
		return nil, err
	}
	switch {
	case found != nil:
		return found.t, nil
	case ended != nil:
		return ended.t, nil
	}
	return nil, transfer.ErrNotFound
}

// live reports whether t can still have a call: ACTIVE or ONGOING at now.
func live(t *transfer.Transfer, now time.Time) bool {
	st := t.StatusAt(now)
	return st == transfer.StatusActive || st == transfer.StatusOngoing
}

// idCandidates are the distinct transfer ids req's headers carry, in the
// order correlate reads them, at most maxIDCandidates.
func (s *Server) idCandidates(req *sip.Request, in *transfer.Inbound) []candidate {
	var out []candidate
	add := func(source, id string) {
		for _, c := range out {
			if c.id == id {
				return
			}
		}
		if id != "" && len(out) < maxIDCandidates {
			out = append(out, candidate{source, id})
		}
	}
	if h := req.GetHeader(s.cfg.TransferHeader); h != nil {
		add(byHeader, strings.TrimSpace(h.Value()))
	}
	for _, v := range in.CallInfo {
		add(byCallInfo, callInfoTransferID(v))
	}
	for _, u := range in.UUI {
		if transferIDPattern.MatchString(u.Text) {
			add(byUUI, u.Text)
		}
	}
	return out
}

// callInfoTransferID is the transfer id a Call-Info value names, or "".
func callInfoTransferID(v string) string {
	head, params := splitParams(v)
	if p, _ := paramValue(params, "purpose"); !strings.EqualFold(p, callInfoPurpose) {
		return ""
	}
	uri := addrURI(head)
	var id string
	switch scheme, rest, _ := strings.Cut(uri, ":"); strings.ToLower(scheme) {
	case "urn":
		if len(uri) > len(transferURNPrefix) && strings.EqualFold(uri[:len(transferURNPrefix)], transferURNPrefix) {
			id = uri[len(transferURNPrefix):]
		}
	case "sip", "sips":
		user, _, hasHost := strings.Cut(rest, "@")
		if unescaped, err := url.PathUnescape(user); hasHost && err == nil {
			id = unescaped
		}
	}
	if !transferIDPattern.MatchString(id) {
		return ""
	}
	return id
}

// findByUser finds the transfer a Request-URI user part names: a SIP
// transfer id, else a dialled number leased to a PHONE_NUMBER transfer.
func (s *Server) findByUser(ctx context.Context, user string) (*transfer.Transfer, error) {
	if user == "" {
		return nil, transfer.ErrNotFound
	}
	t, err := s.lookupSIP(ctx, user)
	if !errors.Is(err, transfer.ErrNotFound) {
		return t, err
	}
	for _, n := range numberCandidates(user) {
		t, err := s.svc.FindByNumber(ctx, n)
		if !errors.Is(err, transfer.ErrNotFound) {
			return t, err
		}
	}
	return nil, transfer.ErrNotFound
}

func (s *Server) lookupSIP(ctx context.Context, id string) (*transfer.Transfer, error) {
	if id == "" {
		return nil, transfer.ErrNotFound
	}
	t, err := s.svc.Lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	if t.Type != transfer.TypeSIP {
		return nil, transfer.ErrNotFound
	}
	return t, nil
}

package siptest

import (
	"context"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The destination's side of the dialog it answered, for tests where it
// plays a SIP agent: requests of its own (BYE with headers, REFER, INFO,
// re-INVITE) and the in-dialog requests it receives.

// answerInDialog answers an in-dialog request 200 and hands it to ch.
func (d *Destination) answerInDialog(ch chan *sip.Request) func(*sip.Request, sip.ServerTransaction) {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		select {
		case ch <- req:
		default:
		}
	}
}

// onReinvite answers a re-INVITE (a session refresh, a hold) with its own
// SDP, as the 200 OK did.
func (d *Destination) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	dlg := d.Dialog()
	if dlg == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "No Dialog", nil))
		return
	}
	_ = dlg.ReadRequest(req, tx)
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", d.answerSDP(d.Offer()))
	for _, h := range answerHeaders(req) {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
	select {
	case d.Reinvites <- req:
	default:
	}
}

// answerHeaders go with its SDP answers: the content type, and the
// request's session timer accepted as asked (RFC 4028).
func answerHeaders(req *sip.Request) []sip.Header {
	hdrs := []sip.Header{sip.NewHeader("Content-Type", "application/sdp")}
	if se := req.GetHeader("Session-Expires"); se != nil {
		hdrs = append(hdrs, sip.NewHeader("Session-Expires", se.Value()), sip.NewHeader("Require", "timer"))
	}
	return hdrs
}

// Request sends a request in its dialog (REFER, INFO, UPDATE, re-INVITE)
// and returns the final answer; a 2xx to a re-INVITE is ACKed.
func (d *Destination) Request(method sip.RequestMethod, contentType string, body []byte, hdrs ...sip.Header) *sip.Response {
	d.T.Helper()
	dlg := d.Dialog()
	req := inDialog(method, dlg.InviteRequest.Contact().Address, contentType, body, hdrs)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := dlg.Do(ctx, req)
	if err != nil {
		d.T.Fatalf("%s from the destination: %v", method, err)
	}
	if method == sip.INVITE && res.IsSuccess() {
		ack := sip.NewRequest(sip.ACK, dlg.InviteRequest.Contact().Address)
		if err := dlg.WriteRequest(ack); err != nil {
			d.T.Fatal(err)
		}
	}
	return res
}

// Hangup sends BYE with extra headers (an agent's outcome) and waits for
// its answer.
func (d *Destination) Hangup(hdrs ...sip.Header) {
	d.T.Helper()
	dlg := d.Dialog()
	bye := inDialog(sip.BYE, dlg.InviteRequest.Contact().Address, "", nil, hdrs)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := dlg.WriteBye(ctx, bye); err != nil {
		d.T.Fatalf("BYE from the destination: %v", err)
	}
}

// LastBye is the latest BYE it received, nil before the first.
func (d *Destination) LastBye() *sip.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.byes) == 0 {
		return nil
	}
	return d.byes[len(d.byes)-1]
}

package sip

import (
	"log/slog"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// DefaultRingingAfter is how long an INVITE may wait for its answer before
// the caller is sent 180 Ringing (Config.RingingAfter).
const DefaultRingingAfter = 500 * time.Millisecond

// ringingRepeat: a UAS that has not answered SHOULD send a provisional
// response every minute, so proxies do not cancel the INVITE transaction
// (RFC 3261 §13.3.1.1).
const ringingRepeat = time.Minute

// ringWhileSlow sends 180 Ringing for an INVITE that is not answered within
// Config.RingingAfter (the agent is still connecting), and again every
// ringingRepeat, so a carrier's no-answer timer does not fire and the
// caller hears ringback rather than silence. The returned stop must be
// called before the final response: it returns once nothing more is sent.
func (s *Server) ringWhileSlow(dlg *sipgo.DialogServerSession, tx sip.ServerTransaction, log *slog.Logger) (stop func()) {
	after := s.cfg.RingingAfter
	if after < 0 {
		return func() {}
	}
	// The 180 carries the dialog's To tag (the 200 will too) and our Contact.
	ringing := sip.NewResponseFromRequest(dlg.InviteRequest, sip.StatusRinging, "Ringing", nil)
	ringing.AppendHeader(s.contactFor(dlg.InviteRequest.Transport()))
	halt, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTimer(after)
		defer t.Stop()
		for {
			select {
			case <-halt:
				return
			case <-tx.Done():
				return
			case <-t.C:
				if err := tx.Respond(ringing); err != nil {
					log.Debug("180 Ringing not sent", "err", err)
					return
				}
				t.Reset(ringingRepeat)
			}
		}
	}()
	return sync.OnceFunc(func() {
		close(halt)
		<-done
	})
}

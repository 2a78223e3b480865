// Package lateguard closes a sipgo user agent's door behind it: it keeps
// requests that arrive late, after the user agent closed, from its handlers.
//
// sipgo hands every request to its transaction layer on a goroutine of its
// own. A request read just before a listener closed can therefore reach the
// transaction layer after the user agent closed; its listener has left
// sipgo's connection pool by then, so sipgo opens a fresh socket (with a
// reader goroutine) to answer from, and nothing ever closes it. A Door drops
// such late requests and closes what sipgo opened for them.
package lateguard

import (
	"sync/atomic"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Door lets requests through to the handlers it wraps until Close.
type Door struct {
	ua     *sipgo.UserAgent
	closed atomic.Bool
}

// New is an open door for ua's request handlers.
func New(ua *sipgo.UserAgent) *Door { return &Door{ua: ua} }

// Close makes the wrapped handlers drop every request from now on. Call it
// before closing the listeners and the user agent.
func (d *Door) Close() { d.closed.Store(true) }

// Wrap passes requests to next while the door is open. After Close it
// drops them, ends their transactions and closes the user agent's
// transports again, which releases any socket sipgo opened to answer them.
func (d *Door) Wrap(next sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if !d.closed.Load() {
			next(req, tx)
			return
		}
		if tx != nil {
			tx.Terminate()
		}
		_ = d.ua.TransportLayer().Close()
	}
}

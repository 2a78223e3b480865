// Package sipgate closes a sipgo user agent's door behind it.
//
// sipgo hands every request to its transaction layer on a goroutine of its
// own. A request read just before a listener closed can therefore reach the
// transaction layer after the user agent closed; its listener has left
// sipgo's connection pool by then, so sipgo opens a fresh socket (with a
// reader goroutine) to answer from, and nothing ever closes it. Gate drops
// such late requests and closes what sipgo opened for them.
package sipgate

import (
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Gate passes requests to next until closed reports true; after that it
// drops them, ends their transactions and closes the user agent's
// transports again, which releases any socket sipgo opened to answer them.
func Gate(ua *sipgo.UserAgent, closed func() bool, next sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if !closed() {
			next(req, tx)
			return
		}
		if tx != nil {
			tx.Terminate()
		}
		_ = ua.TransportLayer().Close()
	}
}

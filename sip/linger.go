package sip

import (
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// DefaultTransactionLinger is how long a completed server transaction is
// kept by default: Kamailio tm's wt_timer, rather than the RFCs' 64×T1.
const DefaultTransactionLinger = 5 * time.Second

var lingerMu sync.Mutex

// SetTransactionLinger sets, for the whole process, how long sipgo keeps a
// server transaction after its final response to absorb retransmissions:
// Timer J (a non-INVITE over UDP, RFC 3261 17.2.2) and Timer L (an INVITE
// after its 2xx, RFC 6026 8.7), both 64×T1 (32 s) by the RFCs, which is
// also the cap of d. Every call of a busy node holds its INVITE and BYE
// transactions (the parsed requests and responses) that long: at 900
// calls/s, 32 s of them was 300-400 MB of live heap, which the garbage
// collector marks every cycle (docs/benchmarks.md, Capacity). A peer
// retransmits a request that long only when none of the answers reached
// it, and then a late retransmission starts a new transaction (a BYE gets
// 481, an INVITE 486: its transfer is in use; the call goes on). sipgo reads the timers unsynchronised, so this must run before any
// SIP server starts; it writes only when the value changes, so processes
// that set the same value again (tests) do not race. It returns the
// linger applied.
func SetTransactionLinger(d time.Duration) time.Duration {
	lingerMu.Lock()
	defer lingerMu.Unlock()
	d = min(d, 64*sip.T1)
	if sip.Timer_J != d || sip.Timer_L != d {
		sip.Timer_J, sip.Timer_L = d, d
	}
	return d
}

package sip

import (
	"net/netip"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// FuzzReadPathHead feeds datagrams to the read path's scan: whatever the
// bytes, it does not panic, and when it takes a request that sipgo parses
// too, its stateless answer is a response sipgo parses, to the same call
// (Call-ID, CSeq, From) with our To tag and the source in the top Via.
func FuzzReadPathHead(f *testing.F) {
	for _, s := range messageSeeds("127.0.0.1:5060", "TRANSFERID", 4000) {
		f.Add([]byte(s))
	}
	src := netip.MustParseAddrPort("192.0.2.7:5070")
	f.Fuzz(func(t *testing.T, data []byte) {
		h, ok := peekHead(data)
		if !ok {
			return
		}
		_ = h.toTag()
		res := statelessAnswer(&h, src, "503 Service Unavailable", "shedT", "Retry-After: 1")
		msg, err := sip.ParseMessage(data)
		if err != nil {
			return // garbage in: sipgo would drop it too
		}
		req, isReq := msg.(*sip.Request)
		if !isReq || req.CallID() == nil || req.CSeq() == nil || req.From() == nil || req.To() == nil ||
			req.Via() == nil || req.Via().Host == "" || req.Via().Transport == "" {
			return // not a request a client could be answered on
		}
		parsed, err := sip.ParseMessage(res)
		if err != nil {
			t.Fatalf("our answer does not parse: %v\n%q\nto\n%q", err, res, data)
		}
		r, isRes := parsed.(*sip.Response)
		if !isRes || r.StatusCode != 503 {
			t.Fatalf("answer %q", res)
		}
		if r.CallID() == nil || r.CallID().Value() != req.CallID().Value() ||
			r.CSeq() == nil || r.CSeq().SeqNo != req.CSeq().SeqNo || toTag(r) != "shedT" ||
			r.Via() == nil || r.Via().Params.GetOr("received", "") != "192.0.2.7" {
			t.Fatalf("answer %q\nto %q", res, data)
		}
	})
}

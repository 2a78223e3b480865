package sip

import (
	"strings"
	"testing"

	"github.com/icholy/digest"

	"github.com/handoff/handoff/internal/siptest"
	"github.com/handoff/handoff/transfer"
)

// A destination that checks digest the strict way (RFC 3261 §22.4: the
// response over the exact Request-URI, parameters and all) accepts the
// return INVITE's credentials, for 401 and 407, on the first authenticated
// INVITE and on the retry a stale nonce asks for.
func TestInviteReturnDigestURIIsTheRequestURI(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []siptest.DigestOption
		header  string
		invites int // challenged ones included
	}{
		{"401", nil, "Authorization", 2},
		{"407", []siptest.DigestOption{siptest.ProxyChallenge()}, "Proxy-Authorization", 2},
		{"401 then a stale nonce", []siptest.DigestOption{siptest.StaleNonceOnce()}, "Authorization", 3},
		{"407 then a stale nonce", []siptest.DigestOption{siptest.ProxyChallenge(), siptest.StaleNonceOnce()}, "Proxy-Authorization", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t)
			dest := siptest.NewDestination(t, siptest.RequireDigest("ret", "pw-strict", append(tc.opts, siptest.StrictDigestURI())...))
			returnURI := "sip:+15557654321@" + dest.Addr + ";user=phone;transport=udp"
			g.createReturn("strict", transfer.SIPReturn{
				ReturnTransferType: transfer.ReturnInvite, ReturnURI: returnURI,
				Auth: &transfer.Credentials{Username: "ret", Password: "pw-strict"},
			})
			p := newPhone(t)
			c := g.finishCall(p, "strict", "")
			r := g.WaitReturn("strict").Return
			invites := dest.Invites()
			var uris []string
			for _, inv := range invites[1:] {
				if h := inv.GetHeader(tc.header); h != nil {
					creds, err := digest.ParseCredentials(h.Value())
					if err != nil {
						t.Fatalf("%s %q: %v", tc.header, h.Value(), err)
					}
					uris = append(uris, creds.URI)
				}
			}
			if r.Result != transfer.ReturnSucceeded || len(invites) != tc.invites {
				t.Fatalf("returnResult %+v after %d INVITEs (want %d), digest uri= %q, Request-URI %s", r, len(invites), tc.invites, uris, returnURI)
			}
			for i, inv := range invites {
				if got := inv.Recipient.String(); got != returnURI {
					t.Errorf("INVITE %d to %s, want the returnUri %s", i+1, got, returnURI)
				}
			}
			if len(uris) != tc.invites-1 || strings.Join(uris, " ") != strings.TrimSpace(strings.Repeat(returnURI+" ", tc.invites-1)) {
				t.Errorf("digest uri= %q, want the Request-URI %s on each of the %d authenticated INVITEs", uris, returnURI, tc.invites-1)
			}
			c.Hangup()
			siptest.Receive(t, dest.Byes, "the destination got no BYE")
		})
	}
}

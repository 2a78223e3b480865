package lateguard

import (
	"net"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/goleak"
)

// A request that reaches a handler after its user agent closed must not
// get through, and the socket sipgo opened for it (here: the one a send
// after Close opens, as sipgo does to answer such a request) must be
// closed, with its reader goroutine.
func TestDoorDropsLateRequestsAndClosesTheirSockets(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	client, err := sipgo.NewClient(ua)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	options := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: peer.LocalAddr().(*net.UDPAddr).Port})

	door := New(ua)
	passed := 0
	h := door.Wrap(func(*sip.Request, sip.ServerTransaction) { passed++ })
	h(options, nil)
	if passed != 1 {
		t.Fatalf("open door passed %d requests, want 1", passed)
	}

	door.Close()
	ua.Close()
	// sipgo opens a fresh UDP socket (and a goroutine reading it) for a
	// send after Close; nothing in sipgo closes it again.
	if err := client.WriteRequest(options); err != nil {
		t.Fatal(err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := peer.ReadFromUDP(make([]byte, 4096)); err != nil {
		t.Fatalf("the send after Close did not go out: %v", err)
	}
	h(options, nil)
	if passed != 1 {
		t.Fatalf("closed door passed a request")
	}
}

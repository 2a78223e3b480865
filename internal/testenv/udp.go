package testenv

import (
	"fmt"
	"net"
	"testing"
)

// FreeUDPRange returns an even loopback UDP port p with p..p+n-1 all free:
// RTP and RTCP pairs for a subprocess (SIPp's -mp, baresip's rtp_ports).
func FreeUDPRange(t testing.TB, n int) int {
	t.Helper()
	for range 100 {
		p := FreeUDPPort(t)
		if p%2 == 1 || p+n-1 > 65535 {
			continue
		}
		if udpFree(p, n) {
			return p
		}
	}
	t.Fatalf("no %d free consecutive UDP ports", n)
	return 0
}

// udpFree reports whether 127.0.0.1 UDP ports p..p+n-1 can all be bound.
func udpFree(p, n int) bool {
	var held []net.PacketConn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p+i))
		if err != nil {
			return false
		}
		held = append(held, c)
	}
	return true
}

package media

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// freeRange finds n consecutive free loopback UDP ports starting at an even
// number, so tests that count ports are not upset by other processes.
func freeRange(t testing.TB, n int) int {
	t.Helper()
	for range 100 {
		base := 30000 + 2*rand.IntN(15000)
		ok := true
		var conns []*net.UDPConn
		for p := base; p < base+n; p++ {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, uint16(p))))
			if err != nil {
				ok = false
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

func TestPortPoolAllocateEvenAndExhaust(t *testing.T) {
	base := freeRange(t, 6)
	pool, err := NewPortPool(loopback, base, base+5, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	var all []*Ports
	for range 3 {
		p, err := pool.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p)
		if p.Port%2 != 0 || p.Port < base || p.Port+1 > base+5 || seen[p.Port] {
			t.Fatalf("bad port %d", p.Port)
		}
		seen[p.Port] = true
		if got := p.RTP.LocalAddr().(*net.UDPAddr).Port; got != p.Port {
			t.Fatalf("RTP socket on %d, want %d", got, p.Port)
		}
		if got := p.RTCP.LocalAddr().(*net.UDPAddr).Port; got != p.Port+1 {
			t.Fatalf("RTCP socket on %d, want %d", got, p.Port+1)
		}
	}
	if pool.InUse() != 3 {
		t.Fatalf("InUse = %d", pool.InUse())
	}
	if _, err := pool.Allocate(); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("exhausted pool: err = %v", err)
	}
	pool.Release(all[1])
	pool.Release(all[1]) // double release is harmless
	if pool.InUse() != 2 {
		t.Fatalf("InUse after release = %d", pool.InUse())
	}
	p, err := pool.Allocate()
	if err != nil || p.Port != all[1].Port {
		t.Fatalf("reallocate: %v %v", p, err)
	}
	all[1] = p
	for _, p := range all {
		pool.Release(p)
	}
	if pool.InUse() != 0 {
		t.Fatalf("InUse = %d", pool.InUse())
	}
}

func TestPortPoolOddMinRoundsUp(t *testing.T) {
	base := freeRange(t, 4)
	pool, err := NewPortPool(loopback, base+1, base+3, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pool.Allocate()
	if err != nil || p.Port != base+2 {
		t.Fatalf("got %v %v, want port %d", p, err, base+2)
	}
	pool.Release(p)
	if _, err := NewPortPool(loopback, base+1, base+2, 0); err == nil {
		t.Fatal("range without a pair accepted")
	}
}

func TestPortPoolSkipsRefusedPorts(t *testing.T) {
	base := freeRange(t, 4)
	squatter, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, uint16(base+1))))
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close()
	pool, _ := NewPortPool(loopback, base, base+3, 0)
	p, err := pool.Allocate()
	if err != nil || p.Port != base+2 {
		t.Fatalf("got %v %v, want %d", p, err, base+2)
	}
	if _, err := pool.Allocate(); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("err = %v", err)
	}
	pool.Release(p)
}

func TestPortPoolQuarantine(t *testing.T) {
	base := freeRange(t, 2)
	pool, _ := NewPortPool(loopback, base, base+1, time.Minute)
	now := time.Unix(1000, 0)
	pool.now = func() time.Time { return now }

	p, err := pool.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	pool.Release(p)
	if pool.InUse() != 0 {
		t.Fatal("not released")
	}
	if _, err := pool.Allocate(); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("quarantined pair handed out: %v", err)
	}
	now = now.Add(time.Minute + time.Second)
	p, err = pool.Allocate()
	if err != nil || p.Port != base {
		t.Fatalf("after quarantine: %v %v", p, err)
	}
	pool.Release(p)
}

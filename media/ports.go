package media

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoPorts is returned by Allocate when every pair in the range is in use,
// quarantined or refused by the OS.
var ErrNoPorts = errors.New("media: no free RTP ports")

// PortPool hands out RTP/RTCP socket pairs (even port for RTP, the next odd
// one for RTCP) from a fixed range. A released pair rests in quarantine so
// late packets of a finished call never reach the next call on that port.
type PortPool struct {
	bind       netip.Addr
	min, max   int // even min; max is the highest usable RTCP port
	quarantine time.Duration
	now        func() time.Time // swapped in tests

	mu      sync.Mutex
	next    int // round-robin cursor, so ports are reused as late as possible
	inUse   map[int]struct{}
	resting map[int]time.Time // port -> end of quarantine
}

// Ports is one allocated RTP/RTCP socket pair.
type Ports struct {
	RTP, RTCP *Socket
	Port      int // RTP port; RTCP is Port+1

	released atomic.Bool
}

// NewPortPool prepares a pool over [min, max] bound to bind. Nothing is
// bound until Allocate.
func NewPortPool(bind netip.Addr, min, max int, quarantine time.Duration) (*PortPool, error) {
	if !bind.IsValid() {
		return nil, fmt.Errorf("media: port pool: invalid bind address")
	}
	if min%2 != 0 {
		min++
	}
	if min <= 0 || max > 65535 || min+1 > max {
		return nil, fmt.Errorf("media: port pool: range %d-%d holds no even/odd pair", min, max)
	}
	if quarantine < 0 {
		quarantine = 0
	}
	return &PortPool{
		bind: bind.Unmap(), min: min, max: max, quarantine: quarantine, now: time.Now,
		next: min, inUse: map[int]struct{}{}, resting: map[int]time.Time{},
	}, nil
}

// Size is the number of RTP/RTCP pairs in the range.
func (p *PortPool) Size() int { return (p.max - p.min + 1) / 2 }

// Allocate binds the next free pair. Ports the OS refuses (taken by another
// process) are skipped.
func (p *PortPool) Allocate() (*Ports, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	for range p.Size() {
		port := p.next
		p.next += 2
		if p.next+1 > p.max {
			p.next = p.min
		}
		if _, busy := p.inUse[port]; busy {
			continue
		}
		if until, ok := p.resting[port]; ok {
			if now.Before(until) {
				continue
			}
			delete(p.resting, port)
		}
		rtp, err := p.listen(port)
		if err != nil {
			continue
		}
		rtcp, err := p.listen(port + 1)
		if err != nil {
			rtp.Close()
			continue
		}
		p.inUse[port] = struct{}{}
		return &Ports{RTP: rtp, RTCP: rtcp, Port: port}, nil
	}
	return nil, ErrNoPorts
}

func (p *PortPool) listen(port int) (*Socket, error) {
	return listenSocket(netip.AddrPortFrom(p.bind, uint16(port)))
}

// Release closes the sockets and quarantines the pair. Releasing twice is
// harmless.
func (p *PortPool) Release(ports *Ports) {
	if ports == nil || !ports.released.CompareAndSwap(false, true) {
		return
	}
	ports.RTP.Close()
	ports.RTCP.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inUse, ports.Port)
	if p.quarantine > 0 {
		p.resting[ports.Port] = p.now().Add(p.quarantine)
	}
}

// InUse is the number of allocated pairs.
func (p *PortPool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.inUse)
}

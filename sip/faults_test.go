package sip

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/internal/siptest"
	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

// dropFirst drops the first inbound message of each listed method once,
// as a lossy UDP path would.
type dropFirst struct {
	mu      sync.Mutex
	pending map[string]bool
	dropped atomic.Int32
}

func newDropFirst(methods ...string) *dropFirst {
	d := &dropFirst{pending: map[string]bool{}}
	for _, m := range methods {
		d.pending[m] = true
	}
	return d
}

func (d *dropFirst) drop(data []byte) bool {
	method, _, _ := bytes.Cut(data, []byte(" "))
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending[string(method)] {
		delete(d.pending, string(method))
		d.dropped.Add(1)
		return true
	}
	return false
}

func TestLostInviteAckAndByeAreRetransmitted(t *testing.T) {
	lossy := newDropFirst("INVITE", "ACK", "BYE")
	g := newGateway(t, func(c *Config) { c.dropInbound = lossy.drop })
	g.createSIP("lossy")
	p := newPhone(t)
	c := p.MustAnswer(g.srv.TransferURI("lossy"), p.Offer("0"))
	// The first ACK was lost: our 200 is retransmitted and the phone ACKs again.
	g.WaitStatus("lossy", transfer.StatusOngoing)
	expectEcho(t, c, 5)
	c.Hangup() // the first BYE is lost too; its retransmission ends the call
	if done := g.WaitStatus("lossy", transfer.StatusCompleted); done.EndReason != transfer.EndCallerHangup {
		t.Fatalf("end reason %q", done.EndReason)
	}
	if n := lossy.dropped.Load(); n != 3 {
		t.Fatalf("dropped %d messages, want INVITE, ACK and BYE", n)
	}
}

// lossyRelay sits on the media path between the phone and the gateway and
// loses and reorders a share of the packets each way.
type lossyRelay struct {
	conn     *net.UDPConn
	gateway  *net.UDPAddr
	phone    atomic.Pointer[net.UDPAddr]
	lossPct  int
	swapPct  int
	rng      *rand.Rand
	mu       sync.Mutex
	held     map[bool][]byte // one packet held back per direction to reorder
	lost     atomic.Int32
	reorders atomic.Int32
	done     chan struct{}
}

func newLossyRelay(t *testing.T, gateway *net.UDPAddr, lossPct, swapPct int) *lossyRelay {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &lossyRelay{conn: conn, gateway: gateway, lossPct: lossPct, swapPct: swapPct,
		rng: rand.New(rand.NewPCG(1, 2)), held: map[bool][]byte{}, done: make(chan struct{})}
	go r.run()
	t.Cleanup(func() { conn.Close(); <-r.done })
	return r
}

func (r *lossyRelay) addr() *net.UDPAddr { return r.conn.LocalAddr().(*net.UDPAddr) }

func (r *lossyRelay) run() {
	defer close(r.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		toGateway := !from.IP.Equal(r.gateway.IP) || from.Port != r.gateway.Port
		dst := r.gateway
		if toGateway {
			r.phone.Store(from)
		} else if dst = r.phone.Load(); dst == nil {
			continue
		}
		pkt := append([]byte(nil), buf[:n]...)
		r.mu.Lock()
		roll := r.rng.IntN(100)
		switch {
		case roll < r.lossPct:
			r.lost.Add(1)
		case roll < r.lossPct+r.swapPct && r.held[toGateway] == nil:
			r.held[toGateway] = pkt // sent after the next one
			r.reorders.Add(1)
		default:
			_, _ = r.conn.WriteToUDP(pkt, dst)
			if h := r.held[toGateway]; h != nil {
				_, _ = r.conn.WriteToUDP(h, dst)
				r.held[toGateway] = nil
			}
		}
		r.mu.Unlock()
	}
}

// frameOrder records the order of the caller frames the agent hears (a
// siptest.Tap's OnAudio).
type frameOrder struct {
	mu    sync.Mutex
	index map[[2]int16]int // first two decoded samples of pattern(i) -> i
	heard []int
}

func (o *frameOrder) add(_ agent.Track, frame []int16) {
	o.mu.Lock()
	if i, ok := o.index[[2]int16{frame[0], frame[1]}]; ok {
		o.heard = append(o.heard, i)
	}
	o.mu.Unlock()
}

func TestFivePercentLossAndReordering(t *testing.T) {
	const frames = 200
	op := &frameOrder{index: map[[2]int16]int{}}
	pcm := make([]int16, media.FrameSamples)
	for i := range frames {
		media.DecodeULaw(pcm, pattern(i)[:media.FrameSamples])
		op.index[[2]int16{pcm[0], pcm[1]}] = i
	}
	g := newGateway(t, func(c *Config) { c.Pipeline = &siptest.Tap{Pipeline: agent.Loopback{}, OnAudio: op.add} })
	g.createSIP("netem")
	p := newPhone(t)
	c := p.MustAnswer(g.srv.TransferURI("netem"), p.Offer("0"))
	g.WaitStatus("netem", transfer.StatusOngoing)
	relay := newLossyRelay(t, c.Remote, 5, 5)
	c.Remote = relay.addr() // the phone now talks through the relay

	sending := make(chan struct{})
	go func() {
		defer close(sending)
		for i := range frames {
			c.SendAudio(pattern(i))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	echoed := map[string]bool{}
	for i := range frames {
		echoed[string(pattern(i))] = false
	}
	back := 0
	c.TryReadRTP(8*time.Second, func(pkt *rtp.Packet) bool {
		if seen, ok := echoed[string(pkt.Payload)]; ok && !seen {
			echoed[string(pkt.Payload)] = true
			back++
		}
		return back >= frames*80/100
	})
	<-sending
	// About 10% is lost over the two ways; at least 80% must come back.
	if back < frames*80/100 {
		t.Fatalf("%d of %d frames came back through 5%% loss each way", back, frames)
	}
	op.mu.Lock()
	heard := append([]int(nil), op.heard...)
	op.mu.Unlock()
	for i := 1; i < len(heard); i++ {
		if heard[i] <= heard[i-1] {
			t.Fatalf("the agent heard frame %d after %d: reordering reached it", heard[i], heard[i-1])
		}
	}
	if relay.lost.Load() == 0 || relay.reorders.Load() == 0 {
		t.Fatalf("the relay lost %d and reordered %d packets; the test proved nothing", relay.lost.Load(), relay.reorders.Load())
	}
	c.Hangup()
	g.WaitStatus("netem", transfer.StatusCompleted)
}

// flakyStore fails every write while down.
type flakyStore struct {
	transfer.Store
	down atomic.Bool
	hits atomic.Int32
}

var errStoreDown = errors.New("store unavailable")

func (f *flakyStore) Update(ctx context.Context, id string, now time.Time, fn func(*transfer.Transfer) error) (*transfer.Transfer, error) {
	if f.down.Load() {
		f.hits.Add(1)
		return nil, errStoreDown
	}
	return f.Store.Update(ctx, id, now, fn)
}

func TestStoreOutageMidCallLosesNothing(t *testing.T) {
	flaky := &flakyStore{}
	g := newGatewayOn(t, func(s transfer.Store) transfer.Store { flaky.Store = s; return flaky })
	g.createSIP("outage")
	g.createSIP("during-outage")
	p := newPhone(t)
	c := p.MustAnswer(g.srv.TransferURI("outage"), p.Offer("0"))
	g.WaitStatus("outage", transfer.StatusOngoing)

	flaky.down.Store(true)
	expectEcho(t, c, 10) // media does not need the store
	c.Hangup()
	eventually(t, "the end was tried while the store was down", func() bool { return flaky.hits.Load() > 1 })
	g.inviteWhileDown(t, "during-outage")
	flaky.down.Store(false)
	if done := g.WaitStatus("outage", transfer.StatusCompleted); done.EndReason != transfer.EndCallerHangup {
		t.Fatalf("end reason %q", done.EndReason)
	}
}

// inviteWhileDown checks a new INVITE is refused with 503 (not lost, nor
// answered and dropped) once the node has seen the store fail a write:
// the embedded store's claims live in memory while its writes succeed.
func (g *gateway) inviteWhileDown(t *testing.T, id string) {
	p := newPhone(t)
	if _, err := p.Invite(g.srv.TransferURI(id), p.Offer("0"), answerNone); statusOf(err) != 503 {
		t.Fatalf("INVITE during a store outage: %v, want 503", err)
	}
}

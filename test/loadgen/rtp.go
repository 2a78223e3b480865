package main

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// frame is one 20 ms PCMU packet's worth: 160 samples, 8 kHz.
const (
	frameSamples = 160
	frameEvery   = 20 * time.Millisecond
	rtpHeader    = 12
)

// leg is one RTP socket of the generator: it sends a 50 packet/s PCMU stream
// to remote (when set) and measures what it receives.
type leg struct {
	conn   *net.UDPConn
	remote atomic.Pointer[net.UDPAddr]
	ssrc   uint32
	seq    uint16
	ts     uint32
	sent   atomic.Int64
	rx     rxStats
	late   time.Duration
}

func newLeg(ip string, ssrc uint32, late time.Duration) (*leg, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		return nil, err
	}
	_ = conn.SetReadBuffer(1 << 20)
	return &leg{conn: conn, ssrc: ssrc, late: late}, nil
}

// port is the leg's local RTP port.
func (l *leg) port() int { return l.conn.LocalAddr().(*net.UDPAddr).Port }

// send writes the next packet of the stream into buf and sends it.
func (l *leg) send(buf []byte) {
	dst := l.remote.Load()
	if dst == nil {
		return
	}
	buf[0], buf[1] = 0x80, 0 // RTP v2, PCMU
	binary.BigEndian.PutUint16(buf[2:], l.seq)
	binary.BigEndian.PutUint32(buf[4:], l.ts)
	binary.BigEndian.PutUint32(buf[8:], l.ssrc)
	l.seq++
	l.ts += frameSamples
	if _, err := l.conn.WriteToUDP(buf, dst); err == nil {
		l.sent.Add(1)
	}
}

// receive reads until the socket is closed.
func (l *leg) receive() {
	buf := make([]byte, 2048)
	for {
		n, err := l.conn.Read(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		// RTP version 2, PCMU only: an RTCP packet (sent to the next port,
		// which may be another call's leg) is not part of the stream.
		if err != nil || n < rtpHeader || buf[0]>>6 != 2 || buf[1]&0x7f != 0 {
			continue
		}
		l.rx.packet(binary.BigEndian.Uint16(buf[2:]), binary.BigEndian.Uint32(buf[4:]), time.Now(), l.late)
	}
}

// rxStats measures one received stream: packets, the sequence numbers
// expected (RFC 3550 A.1: highest extended minus first, plus one), and
// packets late: arriving more than the threshold after the stream's best
// packet, comparing each packet's arrival with its timestamp (8 kHz).
type rxStats struct {
	received atomic.Int64
	late     atomic.Int64
	expected atomic.Int64

	started          bool
	firstSeq, maxExt int64
	lastSeq          uint16
	lastExt          int64 // extended sequence number of lastSeq
	firstTS          uint32
	origin           time.Time
	best             time.Duration // smallest arrival offset seen
}

func (s *rxStats) packet(seq uint16, ts uint32, now time.Time, late time.Duration) {
	if !s.started {
		s.started, s.lastSeq, s.lastExt = true, seq, int64(seq)
		s.firstSeq, s.maxExt, s.firstTS, s.origin, s.best = int64(seq), int64(seq), ts, now, 0
	}
	// Extend the 16-bit number by its distance to the newest one (RFC 3550
	// A.1): an old packet after a wrap stays in its own cycle.
	ext := s.lastExt + int64(int16(seq-s.lastSeq))
	if ext > s.lastExt {
		s.lastSeq, s.lastExt = seq, ext
	}
	s.maxExt = max(s.maxExt, ext)
	// Where the packet is against its timestamp, relative to the first one.
	due := time.Duration(int64(int32(ts-s.firstTS))) * time.Second / 8000
	offset := now.Sub(s.origin) - due
	if offset < s.best {
		s.best = offset
	}
	if offset-s.best > late {
		s.late.Add(1)
	}
	s.received.Add(1)
	s.expected.Store(s.maxExt - s.firstSeq + 1)
}

// pacer sends every leg's stream, spreading the legs over the 20 ms so the
// packets do not leave in one burst: leg i sends in millisecond slot i % 20.
type pacer struct {
	mu   sync.Mutex
	legs [20][]*leg
	n    int
}

func (p *pacer) add(l *leg) {
	p.mu.Lock()
	p.legs[p.n%20] = append(p.legs[p.n%20], l)
	p.n++
	p.mu.Unlock()
}

// run paces until stop is closed, catching up on the slots a late wake-up
// skipped so no stream falls behind its 50 packets per second.
func (p *pacer) run(stop <-chan struct{}) {
	buf := make([]byte, rtpHeader+frameSamples)
	for i := rtpHeader; i < len(buf); i++ {
		buf[i] = 0x55
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start, done := time.Now(), int64(0)
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			for due := int64(now.Sub(start) / time.Millisecond); done < due; done++ {
				p.mu.Lock()
				slot := p.legs[done%20]
				p.mu.Unlock()
				for _, l := range slot {
					l.send(buf)
				}
			}
		}
	}
}

// flow is one direction's totals at a moment.
type flow struct{ sent, received, expected, late int64 }

func (f flow) minus(g flow) flow {
	return flow{f.sent - g.sent, f.received - g.received, f.expected - g.expected, f.late - g.late}
}

// flowOf adds up what senders sent and receivers received.
func flowOf(senders, receivers []*leg) flow {
	var f flow
	for _, l := range senders {
		f.sent += l.sent.Load()
	}
	for _, l := range receivers {
		f.received += l.rx.received.Load()
		f.expected += l.rx.expected.Load()
		f.late += l.rx.late.Load()
	}
	return f
}

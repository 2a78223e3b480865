package media

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"
)

// DefaultRTCPInterval is the nominal report interval (RFC 3550 §6.2 minimum).
const DefaultRTCPInterval = 5 * time.Second

const (
	maxDropout = 3000 // RFC 3550 A.1
	seqMod     = 1 << 16
)

// rxStats is the RFC 3550 receiver state for the latched source: sequence
// extension and loss (A.1, A.3) and interarrival jitter (A.8).
type rxStats struct {
	init          bool
	baseSeq       uint16
	maxSeq        uint16
	cycles        uint32
	badSeq        uint32
	received      uint32
	expectedPrior uint32
	receivedPrior uint32

	haveTransit bool
	transit     int32
	jitter      float64 // timestamp units

	lostReported int64 // loss already added to the metric
}

func (r *rxStats) reset(seq uint16) {
	*r = rxStats{init: true, baseSeq: seq, maxSeq: seq, badSeq: seqMod + 1}
}

// updateSeq accounts one packet; false means a huge jump that is not yet
// believed (the next packet in that new sequence resynchronises).
func (r *rxStats) updateSeq(seq uint16) bool {
	if !r.init {
		r.reset(seq)
	}
	udelta := seq - r.maxSeq
	switch {
	case udelta < maxDropout:
		if seq < r.maxSeq {
			r.cycles += seqMod
		}
		r.maxSeq = seq
	case uint32(udelta) <= seqMod-maxMisorder:
		if uint32(seq) != r.badSeq {
			r.badSeq = (uint32(seq) + 1) & (seqMod - 1)
			return false
		}
		r.reset(seq) // two sequential packets: the sender restarted
	default:
		// duplicate or reordered
	}
	r.received++
	return true
}

// updateJitter implements RFC 3550 A.8 with arrival converted to the RTP clock.
func (r *rxStats) updateJitter(ts uint32, arrival time.Duration, clockRate int) {
	arrivalTS := uint32(arrival.Nanoseconds() * int64(clockRate) / int64(time.Second))
	transit := int32(arrivalTS - ts)
	if r.haveTransit {
		d := float64(transit - r.transit)
		if d < 0 {
			d = -d
		}
		r.jitter += (d - r.jitter) / 16
	}
	r.transit, r.haveTransit = transit, true
}

func (r *rxStats) extendedMax() uint32 { return r.cycles + uint32(r.maxSeq) }

func (r *rxStats) lost() int64 {
	if !r.init {
		return 0
	}
	expected := int64(r.extendedMax()) - int64(r.baseSeq) + 1
	return expected - int64(r.received)
}

func (r *rxStats) jitterDuration(clockRate int) time.Duration {
	if clockRate <= 0 {
		return 0
	}
	return time.Duration(r.jitter * float64(time.Second) / float64(clockRate))
}

// report builds a reception report block and starts a new interval.
func (r *rxStats) report(ssrc uint32) rtcp.ReceptionReport {
	expected := r.extendedMax() - uint32(r.baseSeq) + 1
	expectedInterval := expected - r.expectedPrior
	receivedInterval := r.received - r.receivedPrior
	r.expectedPrior, r.receivedPrior = expected, r.received
	var fraction uint8
	if lostInterval := int64(expectedInterval) - int64(receivedInterval); expectedInterval != 0 && lostInterval > 0 {
		fraction = uint8((lostInterval << 8) / int64(expectedInterval))
	}
	// Cumulative loss is a signed 24-bit field.
	lost := min(max(r.lost(), -0x800000), 0x7FFFFF)
	return rtcp.ReceptionReport{
		SSRC:               ssrc,
		FractionLost:       fraction,
		TotalLost:          uint32(lost) & 0xFFFFFF,
		LastSequenceNumber: r.extendedMax(),
		Jitter:             uint32(r.jitter),
	}
}

// unixToNTP converts wall-clock time to the 64-bit NTP format of SRs.
func unixToNTP(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return secs<<32 | frac
}

// signed24 decodes the cumulative-loss field of a reception report.
func signed24(v uint32) int64 {
	v &= 0xFFFFFF
	if v&0x800000 != 0 {
		return int64(v) - 0x1000000
	}
	return int64(v)
}

// rtcpSRTP is the RTCP path's SRTCP state.
type rtcpSRTP struct {
	rx, tx srtpState
	hdr    rtcp.Header
	plain  []byte // decrypted SRTCP; made on first use
}

// rtcpFrame is the RTCP part of a frame: every rtcpPollFrames frames the
// packets waiting on the RTCP socket, and a report when one is due.
func (s *Session) rtcpFrame(wall time.Time, now time.Duration, rx *rxBatch) {
	s.frames++
	if s.frames%rtcpPollFrames == 0 {
		s.receiveRTCP(rx)
	}
	if !wall.Before(s.rtcpNext) {
		s.sendRTCP(wall, false)
		s.rtcpNext = wall.Add(s.rtcpInterval())
	}
}

// receiveRTCP handles every packet waiting on the RTCP socket.
func (s *Session) receiveRTCP(rx *rxBatch) {
	for {
		n, err := s.rconn.read(rx)
		if err != nil {
			return // closed underneath: the RTP socket says so too
		}
		for i := range n {
			s.handleRTCP(rx.data(i), rx.pkts[i].src)
		}
		if n < rxBatchLen {
			return
		}
	}
}

// rtcpInterval randomises the nominal interval over [0.5, 1.5] (RFC 3550
// §6.3.1) so sessions started together do not report in lockstep.
func (s *Session) rtcpInterval() time.Duration {
	return time.Duration(float64(s.cfg.RTCPInterval) * (0.5 + rand.Float64()))
}

// sendRTCP sends SR (or RR if we have not sent RTP) + SDES CNAME, and BYE
// at the end of the session.
func (s *Session) sendRTCP(wall time.Time, bye bool) {
	now := wall.Sub(s.epoch)

	s.mu.Lock()
	s.accountIntervalLocked()
	dest := s.rtcpRemote
	if !dest.IsValid() {
		if r := s.remote; r.IsValid() && r.Port() != 0 && r.Port() != 65535 && !r.Addr().IsUnspecified() {
			dest = netip.AddrPortFrom(r.Addr(), r.Port()+1)
		}
	}
	var reports []rtcp.ReceptionReport
	if s.latched && s.rx.init {
		rr := s.rx.report(s.latchSSRC)
		if s.lastSRAt != 0 {
			rr.LastSenderReport = s.lastSR
			rr.Delay = uint32((now - s.lastSRAt) * 65536 / time.Second)
		}
		reports = append(reports, rr)
	}
	clockRate := s.codec.ClockRate
	s.mu.Unlock()

	if !dest.IsValid() {
		return
	}
	var first rtcp.Packet
	if sent := s.packetsOut.Load(); sent > 0 {
		elapsed := now - s.send.paceFrom // set before the first packet
		first = &rtcp.SenderReport{
			SSRC:        s.ssrc,
			NTPTime:     unixToNTP(wall),
			RTPTime:     s.tsBase + uint32(elapsed.Nanoseconds()*int64(clockRate)/int64(time.Second)),
			PacketCount: uint32(sent),
			OctetCount:  uint32(s.payloadOut.Load()),
			Reports:     reports,
		}
	} else {
		first = &rtcp.ReceiverReport{SSRC: s.ssrc, Reports: reports}
	}
	pkts := []rtcp.Packet{first, rtcp.NewCNAMESourceDescription(s.ssrc, s.cname)}
	if bye {
		pkts = append(pkts, &rtcp.Goodbye{Sources: []uint32{s.ssrc}})
	}
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		s.log.Debug("rtcp marshal", "err", err)
		return
	}
	if st := &s.rtcpSRTP.tx; st.sync(s.keys.Load(), true, false) {
		if st.ctx == nil {
			return // never in the clear on an SRTP session
		}
		if b, err = st.ctx.EncryptRTCP(nil, b, &s.rtcpSRTP.hdr); err != nil {
			s.log.Debug("srtcp protect", "err", err)
			return
		}
	}
	if err := s.rconn.WriteTo(b, dest); err != nil {
		s.log.Debug("rtcp write", "err", err)
		return
	}
	s.rtcpOut.Add(1)
}

func (s *Session) handleRTCP(b []byte, src netip.AddrPort) {
	if st := &s.rtcpSRTP.rx; st.sync(s.keys.Load(), false, true) {
		var err error
		if st.ctx == nil {
			err = srtp.ErrFailedToVerifyAuthTag
		} else {
			if s.rtcpSRTP.plain == nil {
				s.rtcpSRTP.plain = make([]byte, 1500)
			}
			b, err = st.ctx.DecryptRTCP(s.rtcpSRTP.plain, b, &s.rtcpSRTP.hdr)
		}
		if err != nil {
			if errors.Is(err, srtp.ErrFailedToVerifyAuthTag) || errors.Is(err, srtp.ErrMKINotFound) {
				s.drop(dropSRTPAuth)
			}
			s.log.Debug("srtcp refused", "err", err, "source", src)
			return
		}
	}
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		s.log.Debug("rtcp malformed", "err", err, "source", src)
		return
	}
	now := s.since()
	s.mu.Lock()
	defer s.mu.Unlock()
	// Only the peer we latched to may steer our RTCP.
	if s.latched && src.Addr() != s.remote.Addr() {
		return
	}
	s.rtcpRemote = src
	s.rtcpIn.Add(1)
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.SenderReport:
			s.lastSR = uint32(p.NTPTime >> 16)
			s.lastSRAt = now
			s.peerReportsLocked(p.Reports)
		case *rtcp.ReceiverReport:
			s.peerReportsLocked(p.Reports)
		case *rtcp.Goodbye:
			s.log.Debug("rtcp bye", "source", src)
		}
	}
}

func (s *Session) peerReportsLocked(reports []rtcp.ReceptionReport) {
	for _, r := range reports {
		if r.SSRC != s.ssrc {
			continue
		}
		s.peer.have = true
		s.peer.fraction = r.FractionLost
		s.peer.lost = signed24(r.TotalLost)
		s.peer.jitter = r.Jitter
	}
}

// accountIntervalLocked feeds the loss counter and jitter histogram once per
// report interval (and at the end), from the RFC 3550 receiver state.
func (s *Session) accountIntervalLocked() {
	if !s.rx.init || s.rx.received == 0 {
		return
	}
	if lost := s.rx.lost(); lost > s.rx.lostReported {
		s.m.packetsLost(lost - s.rx.lostReported)
		s.rx.lostReported = lost
	}
	if s.rx.received > 1 {
		s.m.observeJitter(s.rx.jitterDuration(s.codec.ClockRate).Seconds())
	}
}

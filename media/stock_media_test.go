package media

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// SIPp's stock media, as Debian's sip-tester installs it: media nobody here
// made. g711a.pcap is 7 s of A-law voice in 30 ms packets; each
// dtmf_2833_*.pcap is one RFC 4733 key press with an SSRC, sequence and
// timestamps of its own, unrelated to the voice (and the same SSRC in every
// digit file).
const stockMediaDir = "/usr/share/sip-tester"

// stockPacket is one RTP packet of a capture, with its capture time.
type stockPacket struct {
	at  time.Duration // since the capture's first packet
	rtp []byte
}

// stockMedia reads the RTP packets of one of SIPp's stock pcaps. Without
// sip-tester installed the test is skipped, or fails under CI.
func stockMedia(t testing.TB, name string) []stockPacket {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stockMediaDir, name))
	if errors.Is(err, os.ErrNotExist) {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing (CI is set): apt-get install sip-tester (.ci/run does)", name)
		}
		t.Skipf("%s missing: apt-get install sip-tester", name)
	}
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := pcapRTP(b)
	if err != nil || len(pkts) == 0 {
		t.Fatalf("%s: %d packets, %v", name, len(pkts), err)
	}
	return pkts
}

// pcapRTP returns the UDP payloads of a classic libpcap capture of
// Ethernet/IPv4/UDP packets (what SIPp's pcaps are), in capture order.
func pcapRTP(b []byte) ([]stockPacket, error) {
	if len(b) < 24 {
		return nil, errors.New("pcap: short file")
	}
	var order binary.ByteOrder = binary.LittleEndian
	nanos := false
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4:
	case 0xa1b23c4d:
		nanos = true
	case 0xd4c3b2a1:
		order = binary.BigEndian
	case 0x4d3cb2a1:
		order, nanos = binary.BigEndian, true
	default:
		return nil, errors.New("pcap: not a libpcap file")
	}
	if link := order.Uint32(b[20:]); link != 1 {
		return nil, errors.New("pcap: not Ethernet")
	}
	var out []stockPacket
	var first time.Duration
	for b = b[24:]; len(b) >= 16; {
		sec, frac, n := order.Uint32(b), order.Uint32(b[4:]), int(order.Uint32(b[8:]))
		if len(b) < 16+n {
			return nil, errors.New("pcap: truncated record")
		}
		frame := b[16 : 16+n]
		b = b[16+n:]
		at := time.Duration(sec) * time.Second
		if nanos {
			at += time.Duration(frac)
		} else {
			at += time.Duration(frac) * time.Microsecond
		}
		udp, ok := udpPayload(frame)
		if !ok {
			continue
		}
		if out == nil {
			first = at
		}
		out = append(out, stockPacket{at: at - first, rtp: udp})
	}
	return out, nil
}

// udpPayload unwraps Ethernet (with or without one VLAN tag), IPv4 and UDP.
func udpPayload(f []byte) ([]byte, bool) {
	if len(f) < 14 {
		return nil, false
	}
	ethType, f := binary.BigEndian.Uint16(f[12:]), f[14:]
	if ethType == 0x8100 && len(f) >= 4 {
		ethType, f = binary.BigEndian.Uint16(f[2:]), f[4:]
	}
	if ethType != 0x0800 || len(f) < 20 || f[9] != 17 {
		return nil, false
	}
	ihl := int(f[0]&0x0F) * 4
	if len(f) < ihl+8 {
		return nil, false
	}
	udp := f[ihl:]
	n := int(binary.BigEndian.Uint16(udp[4:]))
	if n < 8 || n > len(udp) {
		return nil, false
	}
	return udp[8:n], true
}

// digits collects OnDTMF output.
type digits struct {
	mu  sync.Mutex
	got []DTMFEvent
}

func (d *digits) add(ev DTMFEvent) {
	d.mu.Lock()
	d.got = append(d.got, ev)
	d.mu.Unlock()
}

func (d *digits) snapshot() []DTMFEvent {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.got)
}

func (d *digits) String() string {
	var s []rune
	for _, ev := range d.snapshot() {
		s = append(s, ev.Digit)
	}
	return string(s)
}

// The field bug of issue 11: SIPp's stock voice, then its stock '#', the
// way SIPp scenarios play them one after the other. The digit's packets
// carry another SSRC and arrive right after the last voice packet; they
// are a telephone-event stream of their own, not a rival audio stream.
func TestSessionStockVoiceThenPound(t *testing.T) {
	voice, pound := stockMedia(t, "g711a.pcap"), stockMedia(t, "dtmf_2833_pound.pcap")
	for _, srtp := range []bool{false, true} {
		name := "RTP"
		if srtp {
			name = "SRTP"
		}
		t.Run(name, func(t *testing.T) {
			pool := testPool(t)
			ports, peerPorts := allocate(t, pool), newPeerPorts(t)
			ours, theirs := NewSRTPKey(1, AESCM128HMACSHA180), NewSRTPKey(1, AESCM128HMACSHA180)
			var audio frames
			var got digits
			cfg := SessionConfig{Ports: ports, Remote: addrOf(peerPorts.RTP), Codec: PCMA, DTMFPayloadType: 101, OnAudio: audio.add, OnDTMF: got.add}
			p := newSRTPPeer(t, peerPorts.RTP, peerPorts.RTCP, addrOf(ports.RTP), theirs, ours)
			if srtp {
				cfg.LocalKey, cfg.RemoteKey = &ours, &theirs
			}
			s := startSession(t, cfg)
			sent := uint64(0)
			send := func(pkts []stockPacket) {
				for _, pkt := range pkts {
					b := pkt.rtp
					if srtp {
						var err error
						if b, err = p.tx.EncryptRTP(nil, b, nil); err != nil {
							t.Fatal(err)
						}
					}
					p.write(b)
					// Faster than the capture's pace, in windows the socket
					// buffer holds.
					if sent++; sent%32 == 0 {
						eventually(t, "the session to keep up", func() bool { return s.Stats().PacketsIn == sent })
					}
				}
			}
			send(voice)
			send(pound)

			eventually(t, "the # key press", func() bool { return len(got.snapshot()) > 0 })
			wantFrames := len(voice) * 240 / FrameSamples
			eventually(t, "all the voice", func() bool { return audio.len() == wantFrames })
			if ev := got.snapshot(); len(ev) != 1 || ev[0] != (DTMFEvent{'#', 280 * time.Millisecond}) {
				t.Fatalf("events %v, want one # of 280 ms", ev)
			}
			// The # is reported at its first end packet: wait for the
			// session to have taken the last ones too.
			eventually(t, "every packet taken", func() bool {
				st := s.Stats()
				return st.PacketsIn+st.PacketsLate+st.PacketsDropped >= sent
			})
			st := s.Stats()
			// The digit's three end packets are one packet sent three times
			// (same sequence number): under SRTP the last two are replays.
			wantLate := uint64(0)
			if srtp {
				wantLate = 2
			}
			if st.PacketsDropped != 0 || st.PacketsLate != wantLate || st.PacketsIn != uint64(len(voice)+len(pound))-wantLate {
				t.Fatalf("stats %+v", st)
			}
			if st.RemoteSSRC != 0xdee0ee8f || st.PacketsLost != 0 {
				t.Fatalf("the voice's stream was disturbed: %+v", st)
			}
		})
	}
}

// Digits played from SIPp's stock files one after another share one SSRC
// but jump in sequence and timestamp from file to file, back and forth: each
// file is still a new key press, and a file played again after a pause
// (the same SSRC, sequence numbers and timestamps) is one more.
func TestSessionStockDigitsInARow(t *testing.T) {
	voice := stockMedia(t, "g711a.pcap")
	pound, zero, star := stockMedia(t, "dtmf_2833_pound.pcap"), stockMedia(t, "dtmf_2833_0.pcap"), stockMedia(t, "dtmf_2833_star.pcap")
	var got digits
	s := unstartedSession(t, SessionConfig{Codec: PCMA, DTMFPayloadType: 101, OnDTMF: got.add})
	src := newPeer(t, addrOf(s.conn)).addr()
	now := time.Duration(0)
	play := func(pkts []stockPacket) {
		start := now
		for _, pkt := range pkts {
			now = start + pkt.at
			s.handleRTP(pkt.rtp, src, now)
			s.tick(now)
		}
		now += frameDuration
	}
	play(voice)
	play(pound) // right after the voice
	play(zero)  // sequence jumps forward, timestamp back
	play(pound) // sequence jumps back
	play(star)  // sequence back by 46, timestamp back, marked start
	now += time.Second
	play(star) // the same packets again after a pause
	s.tick(now + time.Second)
	if g := got.String(); g != "#0#**" {
		t.Fatalf("digits %q, want %q", g, "#0#**")
	}
	if st := s.Stats(); st.PacketsDropped != 0 || st.DTMFEvents != 5 {
		t.Fatalf("stats %+v", st)
	}
}

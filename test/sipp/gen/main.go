// Command gen writes the RTP pcaps the SIPp scenarios in test/sipp play
// with play_pcap_audio: G.711 μ-law audio (payload type 0) and RFC 4733
// DTMF events (payload type 101), and G.711 A-law audio (payload type 8)
// for a scenario that plays the return destination. The files are classic
// libpcap captures
// (Ethernet/IPv4/UDP/RTP built by hand); SIPp only uses their RTP payload
// and timing, and rewrites addresses and ports.
//
// All files written by one run belong to one RTP stream: the same SSRC,
// with sequence numbers and timestamps that continue from file to file in
// the order audio, then the digits in the order given. A scenario that
// plays them in that order therefore sends one coherent stream.
//
//	go run ./test/sipp/gen -o test/sipp/pcap            # the committed files
//	go run ./test/sipp/gen -o /tmp/x -audio 20s -digits ""  # a longer audio file
//
// With -g722 it packetises instead a raw G.722 file that ffmpeg encoded
// (the reference encoder nobody here wrote) into g722_<s>s.pcap: payload
// type 9, 160 octets (20 ms of 16 kHz audio) a packet, timestamps 160
// apart (RFC 3551's 8000 Hz clock for G.722), an SSRC of its own. The
// committed g722_4s.pcap is a 6 kHz tone (above G.711's band) plus a 1 kHz
// control, made with:
//
//	ffmpeg -f lavfi -i sine=frequency=6000:sample_rate=16000:duration=4 \
//	       -f lavfi -i sine=frequency=1000:sample_rate=16000:duration=4 \
//	       -filter_complex '[0:a][1:a]amix=inputs=2:normalize=0' \
//	       -ac 1 -ar 16000 -c:a pcm_s16le /tmp/tones.wav
//	ffmpeg -i /tmp/tones.wav -ar 16000 -ac 1 -c:a g722 -f g722 /tmp/tones.g722
//	go run ./test/sipp/gen -o test/sipp/pcap -g722 /tmp/tones.g722
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"
)

const (
	ptPCMU     = 0
	ptPCMA     = 8
	ptG722     = 9
	ptEvent    = 101
	ssrc       = 0x48414e44 // "HAND"
	ssrcAlaw   = 0x52455455 // "RETU": the return destination's stream
	ssrcG722   = 0x48445643 // "HDVC": the wideband caller's stream
	frame      = 160        // samples per 20 ms at 8 kHz
	toneHz     = 440        // the caller's tone
	toneAlawHz = 660        // the destination's tone
)

// A fixed capture start, so the files are reproducible byte for byte.
var epoch = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

func main() {
	out := flag.String("o", "test/sipp/pcap", "output directory")
	audio := flag.Duration("audio", 4*time.Second, "length of the audio file (0: none)")
	digits := flag.String("digits", "12#", "one DTMF file per digit, in this order (0-9 * # A-D)")
	eventMS := flag.Int("event-ms", 160, "duration of each DTMF event")
	raw := flag.Bool("ulaw", false, "also write the audio as a headerless μ-law file (for SIPp's rtp_stream)")
	after := flag.Duration("after", 6*time.Second, "length of the μ-law audio that follows the digits in the same stream (0: none)")
	alaw := flag.Duration("alaw", 4*time.Second, "length of the A-law audio file of its own stream (0: none)")
	g722 := flag.String("g722", "", "packetise this raw G.722 file (ffmpeg -f g722) into g722_<s>s.pcap, and nothing else")
	flag.Parse()
	var err error
	if *g722 != "" {
		err = packG722(*out, *g722)
	} else {
		err = run(*out, *audio, *digits, *eventMS, *raw, *after, *alaw)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(dir string, audio time.Duration, digits string, eventMS int, raw bool, after, alaw time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	st := &stream{seq: 1000, ts: 8000}
	if audio > 0 {
		w := newPcap()
		st.audio(w, int(audio/(20*time.Millisecond)))
		name := fmt.Sprintf("pcmu_%gs.pcap", audio.Seconds())
		if err := w.save(filepath.Join(dir, name)); err != nil {
			return err
		}
		if raw {
			var b []byte
			for f := 0; f < int(audio/(20*time.Millisecond)); f++ {
				b = append(b, frameAt(f)...)
			}
			name := fmt.Sprintf("pcmu_%gs.ulaw", audio.Seconds())
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				return err
			}
		}
	}
	for _, d := range digits {
		ev, name, ok := event(d)
		if !ok {
			return fmt.Errorf("no RFC 4733 event for %q", d)
		}
		w := newPcap()
		st.gap(10) // 200 ms between what came before and the key press
		st.dtmf(w, ev, eventMS/20)
		if err := w.save(filepath.Join(dir, "dtmf_"+name+".pcap")); err != nil {
			return err
		}
	}
	if after > 0 {
		w := newPcap()
		st.gap(10)
		st.audio(w, int(after/(20*time.Millisecond)))
		if err := w.save(filepath.Join(dir, fmt.Sprintf("pcmu_after_%gs.pcap", after.Seconds()))); err != nil {
			return err
		}
	}
	if alaw > 0 {
		w := newPcap()
		a := &stream{seq: 5000, ts: 80000}
		for f := 0; f < int(alaw/(20*time.Millisecond)); f++ {
			w.packet(a.at, rtpSSRC(f == 0, ptPCMA, a.seq, a.ts, ssrcAlaw, alawFrameAt(f)))
			a.seq++
			a.ts += frame
			a.at += 20 * time.Millisecond
		}
		if err := w.save(filepath.Join(dir, fmt.Sprintf("pcma_%gs.pcap", alaw.Seconds()))); err != nil {
			return err
		}
	}
	return nil
}

// packG722 writes the G.722 octets of src as an RTP stream: 160 octets
// (two samples each, 20 ms) a packet, the timestamp 160 further each time.
func packG722(dir, src string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	const octets = frame // 160 octets carry 320 samples at 16 kHz
	if len(b) < octets {
		return fmt.Errorf("%s: %d octets, less than one 20 ms packet", src, len(b))
	}
	w := newPcap()
	st := &stream{seq: 3000, ts: 16000}
	n := len(b) / octets
	for f := range n {
		w.packet(st.at, rtpSSRC(f == 0, ptG722, st.seq, st.ts, ssrcG722, b[f*octets:(f+1)*octets]))
		st.seq++
		st.ts += frame
		st.at += 20 * time.Millisecond
	}
	return w.save(filepath.Join(dir, fmt.Sprintf("g722_%gs.pcap", float64(n)/50)))
}

// event maps a key to its RFC 4733 event code and a file-name-safe name.
func event(d rune) (byte, string, bool) {
	switch {
	case d >= '0' && d <= '9':
		return byte(d - '0'), string(d), true
	case d == '*':
		return 10, "star", true
	case d == '#':
		return 11, "hash", true
	case d >= 'A' && d <= 'D':
		return byte(12 + d - 'A'), string(d), true
	}
	return 0, "", false
}

// stream is one RTP stream's state: sequence number, RTP timestamp, and
// the capture time of the next packet.
type stream struct {
	seq uint16
	ts  uint32
	at  time.Duration
}

func (s *stream) gap(frames int) {
	s.ts += uint32(frames * frame)
	s.at += time.Duration(frames) * 20 * time.Millisecond
}

// audio writes n 20 ms frames of a μ-law signal: a 440 Hz tone that is on
// for 400 ms and off (low noise) for 200 ms, so an echo is recognisable.
func (s *stream) audio(w *pcap, n int) {
	for f := 0; f < n; f++ {
		w.packet(s.at, rtp(f == 0, ptPCMU, s.seq, s.ts, frameAt(f)))
		s.seq++
		s.ts += frame
		s.at += 20 * time.Millisecond
	}
}

// frameAt is the f-th 20 ms frame of that signal, μ-law encoded.
func frameAt(f int) []byte {
	payload := make([]byte, frame)
	for i := range payload {
		payload[i] = ulaw(sampleAt(f*frame+i, toneHz))
	}
	return payload
}

// alawFrameAt is the f-th 20 ms frame of the same signal at 660 Hz, A-law
// encoded.
func alawFrameAt(f int) []byte {
	payload := make([]byte, frame)
	for i := range payload {
		payload[i] = alawEncode(sampleAt(f*frame+i, toneAlawHz))
	}
	return payload
}

// sampleAt is sample k of a hz tone that is on for 400 ms and off (low
// noise) for 200 ms.
func sampleAt(k int, hz float64) int16 {
	if (k/1600)%3 != 2 { // 400 ms on, 200 ms off (1600 samples = 200 ms)
		return int16(8000 * math.Sin(2*math.Pi*hz*float64(k)/8000))
	}
	return int16((k*7919)%61 - 30) // quiet, deterministic noise
}

// dtmf writes one RFC 4733 event lasting frames×20 ms: a first packet with
// the marker bit, updates every 20 ms with a growing duration, and the end
// packet sent three times (RFC 4733 §2.5.1.4), all with the event's start
// timestamp. The stream's timestamp then moves past the event.
func (s *stream) dtmf(w *pcap, ev byte, frames int) {
	const volume = 10
	start := s.ts
	for i := 1; i <= frames; i++ {
		end := i == frames
		dur := uint16(i * frame)
		p := []byte{ev, volume, byte(dur >> 8), byte(dur)}
		if end {
			p[1] |= 0x80
		}
		reps := 1
		if end {
			reps = 3
		}
		for r := 0; r < reps; r++ {
			w.packet(s.at+time.Duration(r)*time.Millisecond, rtp(i == 1, ptEvent, s.seq, start, p))
			if !end || r == reps-1 {
				s.seq++ // retransmitted end packets keep their sequence number
			}
		}
		s.at += 20 * time.Millisecond
	}
	s.ts = start + uint32(frames*frame)
}

func rtp(marker bool, pt byte, seq uint16, ts uint32, payload []byte) []byte {
	return rtpSSRC(marker, pt, seq, ts, ssrc, payload)
}

func rtpSSRC(marker bool, pt byte, seq uint16, ts, ssrc uint32, payload []byte) []byte {
	b := make([]byte, 12, 12+len(payload))
	b[0] = 0x80
	b[1] = pt
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
	return append(b, payload...)
}

// ulaw encodes one linear sample as G.711 μ-law.
func ulaw(s int16) byte {
	const bias, clip = 0x84, 32635
	v := int(s)
	sign := 0
	if v < 0 {
		v, sign = -v, 0x80
	}
	if v > clip {
		v = clip
	}
	v += bias
	exp := 7
	for mask := 0x4000; v&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (v >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

// alawEncode encodes one linear sample as G.711 A-law.
func alawEncode(s int16) byte {
	v := int(s)
	sign := byte(0x80)
	if v < 0 {
		v, sign = -v-1, 0
	}
	if v > 32767 {
		v = 32767
	}
	var b byte
	if v < 256 {
		b = byte(v >> 4)
	} else {
		exp := 1
		for x := v >> 8; x > 1; x >>= 1 {
			exp++
		}
		b = byte(exp<<4) | byte((v>>(exp+3))&0x0f)
	}
	return (b | sign) ^ 0x55
}

// pcap is a classic libpcap file (microsecond timestamps, LINKTYPE_ETHERNET).
type pcap struct{ buf bytes.Buffer }

func newPcap() *pcap {
	w := &pcap{}
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535) // snaplen
	binary.LittleEndian.PutUint32(hdr[20:], 1)     // Ethernet
	w.buf.Write(hdr)
	return w
}

// packet appends one Ethernet/IPv4/UDP datagram carrying payload, captured
// at epoch+at, from 127.0.0.1:6000 to 127.0.0.1:20000 (SIPp replaces both).
func (w *pcap) packet(at time.Duration, payload []byte) {
	udpLen := 8 + len(payload)
	ipLen := 20 + udpLen
	frameLen := 14 + ipLen
	t := epoch.Add(at)
	rec := make([]byte, 16)
	binary.LittleEndian.PutUint32(rec[0:], uint32(t.Unix()))
	binary.LittleEndian.PutUint32(rec[4:], uint32(t.Nanosecond()/1000))
	binary.LittleEndian.PutUint32(rec[8:], uint32(frameLen))
	binary.LittleEndian.PutUint32(rec[12:], uint32(frameLen))
	w.buf.Write(rec)

	eth := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00}
	w.buf.Write(eth)

	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(ipLen))
	ip[8] = 64 // TTL
	ip[9] = 17 // UDP
	copy(ip[12:], []byte{127, 0, 0, 1})
	copy(ip[16:], []byte{127, 0, 0, 1})
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	w.buf.Write(ip)

	udp := make([]byte, 8)
	binary.BigEndian.PutUint16(udp[0:], 6000)
	binary.BigEndian.PutUint16(udp[2:], 20000)
	binary.BigEndian.PutUint16(udp[4:], uint16(udpLen))
	// Checksum 0: none (allowed for UDP over IPv4).
	w.buf.Write(udp)
	w.buf.Write(payload)
}

func (w *pcap) save(path string) error { return os.WriteFile(path, w.buf.Bytes(), 0o644) }

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

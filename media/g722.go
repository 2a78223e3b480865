package media

// G.722 (ITU-T Recommendation G.722, "7 kHz audio-coding within 64 kbit/s"),
// mode 1 only: 64 kbit/s, 6 bits for the lower sub-band and 2 for the higher
// sub-band in every octet. The code follows the Recommendation's description
// of the SB-ADPCM blocks (the QMF; SUBTL, QUANTL, INVQAL, INVQBL, LOGSCL,
// SCALEL for the lower sub-band; QUANTH, INVQAH, LOGSCH, SCALEH for the
// higher; the block 4 predictor PARREC, RECONS, UPZERO, UPPOL2, UPPOL1,
// FILTEZ, FILTEP, PREDIC shared by both) with its tables and names, in the
// 16-bit saturating arithmetic of the ITU-T reference implementation (G.191
// STL, src/g722), which it was checked against by reading; no code is copied
// from that or any other implementation. Debian's ffmpeg is the independent
// cross-check in the tests (g722_ffmpeg_test.go says how close it is).
//
// Octet layout (RFC 3551 §4.5.2 and the Recommendation): bits 7-6 are the
// higher sub-band code IH, bits 5-0 the lower sub-band code IL. Each octet
// carries two 16 kHz samples, so a 20 ms packet is 320 samples in 160 octets,
// with an RTP clock of 8000 (RFC 3551's quirk, handled by the session).
//
// For speed (every call codes 50 packets a second each way) the per-sample
// arithmetic is rewritten into exact equivalents of the reference's, which
// g722_predictor.go and g722_tables.go state; the QMF filters a chunk of
// sample pairs at a time, two pairs per multiply (g722_qmf.go); each
// sub-band costs one call per sample. The plain blocks stay in
// g722_reference_test.go as the oracle the fast code is tested against,
// besides the golden, ffmpeg and pinned vectors, all bit-exact.

import "slices"

// The scale factors DETL and DETH after a reset.
const (
	g722LowDetReset  = 32
	g722HighDetReset = 8
)

// g722State is what an encoder and a decoder each track: the QMF delay line
// and both sub-bands' ADPCM state.
type g722State struct {
	qmf       g722QMF
	low, high g722Band
}

// reset sets the Recommendation's initial state.
func (s *g722State) reset() {
	*s = g722State{}
	s.low.det = g722LowDetReset
	s.high.det = g722HighDetReset
}

// ready resets a zero value (no scale factor is ever 0 after a reset).
func (s *g722State) ready() {
	if s.low.det == 0 {
		s.reset()
	}
}

// G722Encoder encodes 16 kHz 16-bit linear PCM to G.722 at 64 kbit/s. The
// codec is stateful across packets: use one encoder per stream direction.
// The zero value is ready to use (as after Reset). Not safe for concurrent use.
type G722Encoder struct {
	g722State
	held    int16 // odd sample waiting for its pair across calls
	holding bool
}

// Reset returns the encoder to the Recommendation's initial state.
func (e *G722Encoder) Reset() {
	e.reset()
	e.held, e.holding = 0, false
}

// Encode appends the G.722 encoding of pcm to dst and returns the extended
// slice: one octet per two samples (320 samples -> 160 octets). An odd final
// sample is kept and paired with the first sample of the next call, so a
// stream encodes the same however it is cut. It allocates only when dst
// lacks the capacity.
func (e *G722Encoder) Encode(dst []byte, pcm []int16) []byte {
	e.ready()
	n := len(pcm)
	if e.holding {
		n++
	}
	dst = slices.Grow(dst, n/2)
	if e.holding && len(pcm) > 0 {
		dst = e.encodePairs(dst, []int16{e.held, pcm[0]})
		pcm = pcm[1:]
		e.holding = false
	}
	pairs := len(pcm) &^ 1
	dst = e.encodePairs(dst, pcm[:pairs])
	if pairs < len(pcm) {
		e.held, e.holding = pcm[pairs], true
	}
	return dst
}

// encodePairs appends the octets for pcm, an even number of samples, to dst,
// which has the capacity. A chunk at a time, the transmit QMF filters, then
// the two sub-bands' ADPCM code the pairs.
func (e *G722Encoder) encodePairs(dst []byte, pcm []int16) []byte {
	var a, b [qmfChunk]int32
	for len(pcm) > 0 {
		k := min(len(pcm), 2*qmfChunk)
		e.qmf.analyze(pcm[:k], &a, &b)
		out := dst[len(dst) : len(dst)+k/2]
		e.encodeBands(a[:len(out)], b[:len(out)], out)
		dst, pcm = dst[:len(dst)+k/2], pcm[k:]
	}
	return dst
}

// encodeBands quantizes the sub-band samples of each pair, made from its QMF
// sums a and b, into out, one octet per pair, adapting after each. The two
// sub-bands' work is independent, so the processor overlaps it.
func (e *G722Encoder) encodeBands(a, b []int32, out []byte) {
	b, out = b[:len(a)], out[:len(a)]
	for i := range a {
		il := e.low.quantL(qmfLower(a[i], b[i]))
		e.low.stepLow(il)
		ih := e.high.quantH(qmfHigher(a[i], b[i]))
		e.high.stepHigh(ih)
		out[i] = byte(ih<<6 | il)
	}
}

// G722Decoder decodes G.722 at 64 kbit/s to 16 kHz 16-bit linear PCM. The
// codec is stateful across packets: use one decoder per stream direction.
// The zero value is ready to use (as after Reset). Not safe for concurrent use.
type G722Decoder struct {
	g722State
}

// Reset returns the decoder to the Recommendation's initial state.
func (d *G722Decoder) Reset() { d.reset() }

// Decode appends the two samples each payload octet carries to dst and
// returns the extended slice (160 octets -> 320 samples). Every octet value
// is a valid code, so any payload decodes. It allocates only when dst lacks
// the capacity. A chunk at a time, the two sub-bands' ADPCM decode, then
// the receive QMF joins them.
func (d *G722Decoder) Decode(dst []int16, payload []byte) []int16 {
	d.ready()
	dst = slices.Grow(dst, 2*len(payload))
	var rl, rh [qmfChunk]int32
	for len(payload) > 0 {
		c := payload[:min(len(payload), qmfChunk)]
		d.decodeBands(c, rl[:len(c)], rh[:len(c)])
		n := len(dst)
		dst = dst[:n+2*len(c)]
		d.qmf.synthesize(&rl, &rh, len(c), dst[n:])
		payload = payload[len(c):]
	}
	return dst
}

// decodeBands decodes both sub-bands of each octet into rl and rh (the
// 6-bit inverse quantizer, mode 1, for the lower one), adapting after each;
// LIMIT(sat16(v)) is LIMIT(v).
func (d *G722Decoder) decodeBands(octets []byte, rl, rh []int32) {
	rl, rh = rl[:len(octets)], rh[:len(octets)]
	for i, c := range octets {
		il, ih := int(c&0x3f), int(c>>6)
		rl[i] = limit(d.low.s + d.low.invQBL6(il))
		d.low.stepLow(il)
		rh[i] = limit(d.high.s + d.high.invQAH(ih))
		d.high.stepHigh(ih)
	}
}

package media

// The G.722 quadrature mirror filters (coefficients: Table 11/G.722): one
// 24-tap linear-phase filter splits 16 kHz input into the two 8 kHz
// sub-bands and, in the decoder, interpolates them back.
//
// Both directions compute, for every sample pair j, two polyphase sums over
// the 12 most recent values of two streams u and v:
//
//	A(j) = sum over i of h(2i)*u(j-i),  B(j) = sum over i of h(2i+1)*v(j-i)
//
// (the Recommendation's XA and XB over the delay line x(0..23), with
// u(j) = x(0), the later value of the pair, and v(j) = x(1)). They run over
// a chunk of pairs at a time, two pairs per pass: u(m) and u(m+1) are packed
// into one int64 as u(m) + u(m+1)<<32, so one multiply by a coefficient
// gives the terms of A(j) and A(j+1) at once, exactly (each sum is below
// 2^31 in magnitude: 32768 times the sum of |h| over 12 taps). The delay
// line itself never shifts: the chunk's values follow the history in the
// packed arrays, and the last 11 become the next history.

// The QMF coefficients h0..h11; h(23-i) = h(i), the filter is symmetric.
const (
	qmfH0, qmfH1, qmfH2, qmfH3   = 3, -11, -11, 53
	qmfH4, qmfH5, qmfH6, qmfH7   = 12, -156, 32, 362
	qmfH8, qmfH9, qmfH10, qmfH11 = -210, -805, 951, 3876
)

const (
	qmfHistory = 11 // past values of u and v a sum needs besides the current
	qmfChunk   = 80 // sample pairs filtered per pass (10 ms), an even number
)

// g722QMF is the filter's delay line: the 11 most recent values of u and v,
// oldest first.
type g722QMF struct {
	u, v [qmfHistory]int32
}

// qmfPacks holds, for one chunk of n pairs, u and v packed two at a time:
// u[t] is u(t-11) + u(t-10)<<32, so the history is in u[0:10] and the chunk
// from u[10]; the value after the chunk counts as zero.
type qmfPacks struct {
	u, v [qmfHistory + qmfChunk]int64
}

func pack(earlier, later int32) int64 { return int64(earlier) + int64(later)<<32 }

// unpack splits a packed sum into its two sums, each below 2^31.
func unpack(s int64) (earlier, later int32) {
	earlier = int32(s)
	return earlier, int32((s - int64(earlier)) >> 32)
}

// begin packs the history for a chunk of n pairs. It returns where the
// chunk's packs go, which the caller fills: pack(u(j-1), u(j)) into u[j] for
// j = 0..n-1, then u(n-1) alone into u[n], and so for v; last are u(-1) and
// v(-1), the most recent history values.
func (p *qmfPacks) begin(q *g722QMF, n int) (u, v []int64, lastU, lastV int32) {
	for i := range qmfHistory - 1 {
		p.u[i], p.v[i] = pack(q.u[i], q.u[i+1]), pack(q.v[i], q.v[i+1])
	}
	u, v = p.u[qmfHistory-1:qmfHistory+n], p.v[qmfHistory-1:qmfHistory+n]
	return u, v[:len(u)], q.u[qmfHistory-1], q.v[qmfHistory-1]
}

// end keeps the last 11 values of a chunk of n pairs as the history.
func (q *g722QMF) end(p *qmfPacks, n int) {
	for i := range qmfHistory {
		q.u[i], q.v[i] = int32(p.u[n+i]), int32(p.v[n+i]) // the low halves
	}
}

// filter computes A and B for the chunk into a and b, whose length is the
// chunk's number of pairs rounded up to even.
func (p *qmfPacks) filter(a, b []int32) {
	b = b[:len(a)]
	for j := 0; j+1 < len(a); j += 2 {
		u := (*[12]int64)(p.u[j : j+12])
		v := (*[12]int64)(p.v[j : j+12])
		a[j], a[j+1] = unpack(qmfH1*u[0] + qmfH3*u[1] + qmfH5*u[2] + qmfH7*u[3] + qmfH9*u[4] + qmfH11*u[5] +
			qmfH10*u[6] + qmfH8*u[7] + qmfH6*u[8] + qmfH4*u[9] + qmfH2*u[10] + qmfH0*u[11])
		b[j], b[j+1] = unpack(qmfH0*v[0] + qmfH2*v[1] + qmfH4*v[2] + qmfH6*v[3] + qmfH8*v[4] + qmfH10*v[5] +
			qmfH11*v[6] + qmfH9*v[7] + qmfH7*v[8] + qmfH5*v[9] + qmfH3*v[10] + qmfH1*v[11])
	}
}

// analyze is the transmit QMF's filter over the n = len(pcm)/2 <= qmfChunk
// sample pairs of pcm (the earlier sample of each pair first): each pair's
// sums A and B into a[:n] and b[:n], from which qmfLower and qmfHigher make
// the sub-band samples (in the band loop, saving a pass).
func (q *g722QMF) analyze(pcm []int16, a, b *[qmfChunk]int32) {
	n := len(pcm) / 2
	var p qmfPacks
	u, v, lastU, lastV := p.begin(q, n)
	for i := 0; i+1 < len(pcm); i += 2 {
		later, earlier := int32(pcm[i+1]), int32(pcm[i])
		u[i>>1], v[i>>1] = pack(lastU, later), pack(lastV, earlier)
		lastU, lastV = later, earlier
	}
	u[n], v[n] = int64(lastU), int64(lastV)
	p.filter(a[:(n+1)&^1], b[:(n+1)&^1])
	q.end(&p, n)
}

// qmfLower and qmfHigher are the transmit QMF's outputs XL and XH from a
// pair's sums, scaled for 16-bit input and limited to 15 bits as the
// reference does.
func qmfLower(a, b int32) int32  { return limit((a + b) >> 14) }
func qmfHigher(a, b int32) int32 { return limit((a - b) >> 14) }

// synthesize is the receive QMF over n <= qmfChunk pairs of reconstructed
// sub-band samples (RL, RH): two 16 kHz samples each into out, the earlier
// first. RL and RH are limited to 15 bits, so their sum and difference need
// no 16-bit saturation. It overwrites rl and rh.
func (q *g722QMF) synthesize(rl, rh *[qmfChunk]int32, n int, out []int16) {
	var p qmfPacks
	u, v, lastU, lastV := p.begin(q, n)
	for j := range n {
		later, earlier := rl[j]-rh[j], rl[j]+rh[j]
		u[j], v[j] = pack(lastU, later), pack(lastV, earlier)
		lastU, lastV = later, earlier
	}
	u[n], v[n] = int64(lastU), int64(lastV)
	a, b := rl[:(n+1)&^1], rh[:(n+1)&^1]
	p.filter(a, b)
	out = out[:2*n]
	for j := range n {
		out[2*j], out[2*j+1] = int16(sat16(a[j]>>11)), int16(sat16(b[j]>>11))
	}
	q.end(&p, n)
}

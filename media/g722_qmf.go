package media

// The G.722 quadrature mirror filters (coefficients: Table 11/G.722): one
// 24-tap linear-phase filter splits 16 kHz input into the two 8 kHz
// sub-bands and, in the decoder, interpolates them back.

// qmfCoef are the 24 QMF coefficients h0..h23 (symmetric).
var qmfCoef = [24]int32{
	3, -11, -11, 53, 12, -156, 32, 362, -210, -805, 951, 3876,
	3876, 951, -805, -210, 362, 32, -156, 12, 53, -11, -11, 3,
}

// g722QMF is the filter's delay line; x[0] is the most recent value.
type g722QMF struct {
	x [24]int32
}

// push shifts the delay line by two and stores the pair, older first.
func (q *g722QMF) push(older, newer int32) {
	copy(q.x[2:], q.x[:22])
	q.x[1], q.x[0] = older, newer
}

// sums returns the filter's even-tap and odd-tap accumulations
// (XA = sum h(2i)*x(j-2i), XB = sum h(2i+1)*x(j-2i-1)).
func (q *g722QMF) sums() (xa, xb int32) {
	for i := 0; i < 24; i += 2 {
		xa += qmfCoef[i] * q.x[i]
		xb += qmfCoef[i+1] * q.x[i+1]
	}
	return xa, xb
}

// analyze is the transmit QMF: two 16 kHz samples in, one lower and one
// higher sub-band sample out (XL, XH), scaled for 16-bit input and limited
// to 15 bits as the reference does.
func (q *g722QMF) analyze(first, second int16) (xl, xh int32) {
	q.push(int32(first), int32(second))
	xa, xb := q.sums()
	return limit((xa + xb) >> 14), limit((xa - xb) >> 14)
}

// synthesize is the receive QMF: the reconstructed sub-band samples
// (RL, RH) in, two 16 kHz samples out, the earlier first.
func (q *g722QMF) synthesize(rl, rh int32) (first, second int16) {
	q.push(sat16(rl+rh), sat16(rl-rh))
	xa, xb := q.sums()
	return int16(sat16(xa >> 11)), int16(sat16(xb >> 11))
}

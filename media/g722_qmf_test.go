package media

import (
	"math/rand/v2"
	"testing"
)

// qmfCoef are the QMF coefficients h0..h23 as Table 11/G.722 prints them.
var qmfCoef = [24]int32{
	3, -11, -11, 53, 12, -156, 32, 362, -210, -805, 951, 3876,
	3876, 951, -805, -210, 362, 32, -156, 12, 53, -11, -11, 3,
}

// qmfConvolve is the Recommendation's QMF accumulation, written the plain
// way: over the delay line x(k) = s[len(s)-1-k] (zero before the start),
// XA = sum of h(k)*x(k) over even k and XB over odd k.
func qmfConvolve(s []int16) (xa, xb int32) {
	for k := 0; k < 24 && k < len(s); k++ {
		if t := qmfCoef[k] * int32(s[len(s)-1-k]); k%2 == 0 {
			xa += t
		} else {
			xb += t
		}
	}
	return xa, xb
}

// TestG722QMF: the chunked, packed filters equal the plain convolution on
// full-scale random input, fed in chunks of every length up to the
// largest, and the two constant sets agree with Table 11.
func TestG722QMF(t *testing.T) {
	h := []int32{qmfH0, qmfH1, qmfH2, qmfH3, qmfH4, qmfH5, qmfH6, qmfH7, qmfH8, qmfH9, qmfH10, qmfH11}
	for i, c := range h {
		if c != qmfCoef[i] || c != qmfCoef[23-i] {
			t.Fatalf("QMF constant h%d = %d, Table 11 has h%d = %d, h%d = %d", i, c, i, qmfCoef[i], 23-i, qmfCoef[23-i])
		}
	}
	rng := rand.New(rand.NewPCG(24, 11))
	in := make([]int16, 2*qmfChunk*qmfChunk)
	for i := range in {
		in[i] = int16(rng.Uint32())
	}
	var tx, rx g722QMF
	var a, b, rl, rh [qmfChunk]int32
	out := make([]int16, 2*qmfChunk)
	var sum []int16 // the receive QMF's input sequence: RL+RH, RL-RH per pair
	for pos, n := 0, 1; pos+2*n <= len(in); pos, n = pos+2*n, n%qmfChunk+1 {
		tx.analyze(in[pos:pos+2*n], &a, &b)
		for j := range n {
			xa, xb := qmfConvolve(in[:pos+2*j+2])
			if a[j] != xa || b[j] != xb || qmfLower(a[j], b[j]) != limit((xa+xb)>>14) || qmfHigher(a[j], b[j]) != limit((xa-xb)>>14) {
				t.Fatalf("analysis of pair %d (chunk of %d) differs", pos/2+j, n)
			}
			rl[j], rh[j] = int32(in[pos+2*j])>>1, int32(in[pos+2*j+1])>>1 // 15 bits
			sum = append(sum, int16(rl[j]+rh[j]), int16(rl[j]-rh[j]))
		}
		rx.synthesize(&rl, &rh, n, out)
		for j := range n {
			xa, xb := qmfConvolve(sum[:pos+2*j+2])
			if out[2*j] != int16(sat16(xa>>11)) || out[2*j+1] != int16(sat16(xb>>11)) {
				t.Fatalf("synthesis of pair %d (chunk of %d) differs", pos/2+j, n)
			}
		}
	}
}

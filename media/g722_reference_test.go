package media

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// The codec's per-sample arithmetic is rewritten for speed (saturations
// that cannot act left out, sign tests as bit masks, table chains folded,
// a search replaced by a division). This file holds the plain version, as
// the Recommendation describes the blocks, in the reference's saturating
// arithmetic: the oracle the fast code must equal, also on states no test
// signal reaches.

// mult is the reference's fractional multiply: (a*b) >> 15, saturated.
func mult(a, b int32) int32 { return sat16(a * b >> 15) }

// refBand is a sub-band's state as the Recommendation keeps it; index 0 of
// the delay lines is the current value (DLT(0), PLT(0), RLT(0)).
type refBand struct {
	s, sz, nb, det int32
	a              [3]int32 // AL1, AL2 (a[0] unused)
	b, d           [7]int32 // BL1..BL6 (b[0] unused), DLT(0..6)
	p, r           [3]int32 // PLT(0..2), RLT(0..2)
}

// refQuantL is QUANTL's search over the decision levels.
func refQuantL(el, detl int32) int {
	wd := el
	if el < 0 {
		wd = -el - 1
	}
	mil := 1
	for mil < 30 && q6[mil]*detl>>12 <= wd {
		mil++
	}
	if el < 0 {
		return int(ilNeg[mil])
	}
	return int(ilPos[mil])
}

// stepLow is INVQAL, the predictor, LOGSCL and SCALEL.
func (b *refBand) stepLow(il int) {
	ril := il >> 2
	wd := oq4[ril4[ril]] << 3
	if ril < 8 {
		wd = -wd
	}
	b.adapt(mult(b.det, wd))
	b.nb = max(0, min(18432, mult(b.nb, 32512)+wl[ril4[ril]]))
	b.det = scale(b.nb, 8)
}

// stepHigh is INVQAH, the predictor, LOGSCH and SCALEH.
func (b *refBand) stepHigh(ih int) {
	wd := oq2[ih2[ih]] << 3
	if ih < 2 {
		wd = -wd
	}
	b.adapt(mult(wd, b.det))
	b.nb = max(0, min(22528, mult(b.nb, 32512)+wh[ih2[ih]]))
	b.det = scale(b.nb, 10)
}

// adapt is PARREC, RECONS, UPZERO, FILTEZ, UPPOL2, UPPOL1, FILTEP and
// PREDIC.
func (b *refBand) adapt(dq int32) {
	b.d[0] = dq
	b.p[0] = sat16(dq + b.sz)
	b.r[0] = sat16(b.s + dq)
	var step int32 = 128 // UPZERO
	if dq == 0 {
		step = 0
	}
	for i := 6; i > 0; i-- {
		g := step
		if b.d[i]^dq < 0 {
			g = -step
		}
		b.b[i] = sat16(g + mult(b.b[i], 32640))
	}
	for i := 6; i > 0; i-- {
		b.d[i] = b.d[i-1]
	}
	b.sz = 0 // FILTEZ
	for i := 6; i > 0; i-- {
		b.sz = sat16(b.sz + mult(sat16(b.d[i]+b.d[i]), b.b[i]))
	}
	b.uppol2()
	b.uppol1()
	b.r[2], b.r[1] = b.r[1], b.r[0] // FILTEP, PREDIC
	sp := sat16(mult(b.a[1], sat16(b.r[1]<<1)) + mult(b.a[2], sat16(b.r[2]<<1)))
	b.s = sat16(sp + b.sz)
}

func (b *refBand) uppol2() {
	wd2 := sat16(b.a[1] << 2)
	if (b.p[0] < 0) == (b.p[1] < 0) {
		wd2 = sat16(-wd2)
	}
	var wd3 int32 = -128
	if (b.p[0] < 0) == (b.p[2] < 0) {
		wd3 = 128
	}
	b.a[2] = max(-12288, min(12288, sat16(sat16(wd2>>7+wd3)+mult(b.a[2], 32512))))
}

func (b *refBand) uppol1() {
	var wd1 int32 = -192
	if (b.p[0] < 0) == (b.p[1] < 0) {
		wd1 = 192
	}
	wd3 := 15360 - b.a[2]
	b.a[1] = max(-wd3, min(wd3, sat16(wd1+mult(b.a[1], 32640))))
	b.p[2], b.p[1] = b.p[1], b.p[0]
}

// fast is the same state as the optimised code keeps it.
func (b *refBand) fast() g722Band {
	f := g722Band{s: b.s, sz: b.sz, nb: b.nb, det: b.det, a1: b.a[1], a2: b.a[2]}
	for i := range 6 {
		f.b[i], f.d[i] = b.b[i+1], b.d[i+1]
		if b.d[i+1] < 0 {
			f.dNeg |= 1 << i
		}
	}
	for i := range 2 {
		if b.p[i+1] < 0 {
			f.pNeg |= 1 << i
		}
	}
	f.r1, f.r2 = sat16(b.r[1]<<1), sat16(b.r[2]<<1)
	return f
}

// filtezOverflows tells whether the reference's FILTEZ sum saturates on
// the way for this state (after UPZERO).
func (b *refBand) filtezOverflows() bool {
	var sz int32
	for i := 6; i > 0; i-- {
		sz += mult(sat16(b.d[i]+b.d[i]), b.b[i])
		if sz != sat16(sz) {
			return true
		}
	}
	return false
}

// randomState is a state within the ranges the codec keeps: NB within its
// limits and DET from it, |AL2| <= 12288, |AL1| <= 15360 - AL2, |DLT| at
// most maxD, the rest any 16-bit value; magnitudes from tiny to full, the
// same order for the whole state.
func randomState(rng *rand.Rand, maxNB, shift, maxD int32) refBand {
	down := rng.IntN(16)
	scaled := func(max int32) int32 { return (rng.Int32N(2*max+1) - max) >> down }
	b := refBand{s: scaled(32767), sz: scaled(32767), nb: rng.Int32N(maxNB + 1)}
	b.det = scale(b.nb, shift)
	b.a[2] = scaled(12288)
	b.a[1] = scaled(15360 - b.a[2])
	for i := 1; i <= 6; i++ {
		b.b[i], b.d[i] = scaled(32767), scaled(maxD)
	}
	b.p[1], b.p[2], b.r[1], b.r[2] = scaled(32767), scaled(32767), scaled(32767), scaled(32767)
	return b
}

// TestG722StepMatchesReference: from random states, one sample's
// adaptation of the fast code leaves exactly the state the plain blocks do,
// for every code, in both sub-bands, FILTEZ overflows included.
func TestG722StepMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(722, 4))
	overflows := 0
	for n := range 200000 {
		low := n%2 == 0
		ref := randomState(rng, highMaxNB, 10, 3704)
		if low {
			ref = randomState(rng, lowMaxNB, 8, 10228)
		}
		f := ref.fast()
		if low {
			il := rng.IntN(64)
			ref.stepLow(il)
			f.stepLow(il)
		} else {
			ih := rng.IntN(4)
			ref.stepHigh(ih)
			f.stepHigh(ih)
		}
		if ref.filtezOverflows() {
			overflows++
		}
		if want := ref.fast(); f != want {
			t.Fatalf("step %d (lower band %v): got %+v, want %+v", n, low, f, want)
		}
	}
	t.Logf("%d of the steps had a FILTEZ sum that saturates on the way", overflows)
	if overflows == 0 {
		t.Fatal("no step exercised FILTEZ's saturation")
	}
}

// TestG722QuantLMatchesSearch: the quantizer's division and table give the
// code the Recommendation's search does, for every EL and every DETL.
func TestG722QuantLMatchesSearch(t *testing.T) {
	for nb := int32(0); nb <= lowMaxNB; nb += 64 { // SCALEL reads NB>>6
		b := g722Band{nb: nb, det: scale(nb, 8)}
		if b.det != lowDet[nb>>6].det {
			t.Fatalf("NBL %d: DETL %d, table %d", nb, b.det, lowDet[nb>>6].det)
		}
		for el := int32(-32768); el <= 32767; el++ {
			if got, want := b.quantL(el), refQuantL(el, b.det); got != want {
				t.Fatalf("EL %d, DETL %d: IL %d, the search gives %d", el, b.det, got, want)
			}
		}
	}
}

// refQuantH is QUANTH.
func refQuantH(eh, deth int32) int {
	wd := eh
	if eh < 0 {
		wd = -eh - 1
	}
	outer := wd >= 564*deth>>12 // MIH = 2
	switch {
	case eh < 0 && outer:
		return 0
	case eh < 0:
		return 1
	case outer:
		return 2
	}
	return 3
}

// refInvQBL6 is INVQBL in mode 1 and refInvQAH INVQAH.
func refInvQBL6(il int, detl int32) int32 {
	wd := oq6[ril6[il]] << 3
	if il < 32 || il >= 62 {
		wd = -wd
	}
	return mult(detl, wd)
}

func refInvQAH(ih int, deth int32) int32 {
	wd := oq2[ih2[ih]] << 3
	if ih < 2 {
		wd = -wd
	}
	return mult(wd, deth)
}

// refEncode is the whole encoder from the plain pieces, from the reset
// state: the transmit QMF by convolution, then both sub-bands.
func refEncode(pcm []int16) []byte {
	low, high := refBand{det: g722LowDetReset}, refBand{det: g722HighDetReset}
	var out []byte
	for i := 0; i+1 < len(pcm); i += 2 {
		xa, xb := qmfConvolve(pcm[:i+2])
		il := refQuantL(sat16(limit((xa+xb)>>14)-low.s), low.det)
		low.stepLow(il)
		ih := refQuantH(sat16(limit((xa-xb)>>14)-high.s), high.det)
		high.stepHigh(ih)
		out = append(out, byte(ih<<6|il))
	}
	return out
}

// refDecode is the whole decoder from the plain pieces, from the reset
// state: both sub-bands, then the receive QMF by convolution.
func refDecode(payload []byte) []int16 {
	low, high := refBand{det: g722LowDetReset}, refBand{det: g722HighDetReset}
	var in, out []int16 // in: the receive QMF's input, RL+RH then RL-RH per pair
	for _, c := range payload {
		il, ih := int(c&0x3f), int(c>>6)
		rl := limit(sat16(low.s + refInvQBL6(il, low.det)))
		low.stepLow(il)
		rh := limit(sat16(high.s + refInvQAH(ih, high.det)))
		high.stepHigh(ih)
		in = append(in, int16(sat16(rl+rh)), int16(sat16(rl-rh)))
		xa, xb := qmfConvolve(in)
		out = append(out, int16(sat16(xa>>11)), int16(sat16(xb>>11)))
	}
	return out
}

// TestG722MatchesReference: the codec equals the plain pieces on the test
// signal, the full-scale signals and random octets, encoding and decoding.
func TestG722MatchesReference(t *testing.T) {
	for _, pcm := range [][]int16{g722TestSignal(), g722OverloadSignal(), g722FullScaleSignal()} {
		enc := g722Encode(pcm)
		if want := refEncode(pcm); !bytes.Equal(enc, want) {
			t.Errorf("encoding: first difference at octet %d of %d", firstDiff(enc, want), len(want))
		}
		if got, want := g722Decode(enc), refDecode(enc); !slices.Equal(got, want) {
			t.Errorf("decoding %d octets: max abs diff %d", len(enc), maxAbsDiff(got, want))
		}
	}
	oct := g722RandomOctets()
	if got, want := g722Decode(oct), refDecode(oct); !slices.Equal(got, want) {
		t.Errorf("decoding random octets: max abs diff %d", maxAbsDiff(got, want))
	}
}

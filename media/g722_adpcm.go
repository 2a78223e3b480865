package media

// The sub-band ADPCM of G.722: quantizers, inverse quantizers, quantizer
// scale factor adaptation (blocks 2 and 3) and the adaptive predictor
// (block 4), shared by the encoder and the decoder so both track the same
// state. Names in comments are the Recommendation's.

// g722Band is one sub-band's ADPCM state. Index 0 of the delay lines is the
// current value, as in the Recommendation (DLT(0), PLT(0), RLT(0)).
type g722Band struct {
	s   int32    // SL/SH: predictor output
	sz  int32    // SZL/SZH: its zero-section part
	nb  int32    // NBL/NBH: logarithmic quantizer scale factor
	det int32    // DETL/DETH: linear quantizer scale factor
	a   [3]int32 // AL1, AL2 / AH1, AH2 (a[0] unused)
	b   [7]int32 // BL1..BL6 / BH1..BH6 (b[0] unused)
	d   [7]int32 // DLT(0..6) / DH(0..6): quantized difference signal
	p   [3]int32 // PLT(0..2) / PH(0..2): partially reconstructed signal
	r   [3]int32 // RLT(0..2) / RH(0..2): reconstructed signal
}

// sat16 saturates to 16 bits, as the reference's add and sub do.
func sat16(v int32) int32 {
	if int32(int16(v)) == v { // the common case, cheapest as a branch
		return v
	}
	if v < 0 {
		return -32768
	}
	return 32767
}

// mult is the reference's fractional multiply: (a*b) >> 15, saturated.
func mult(a, b int32) int32 { return sat16(a * b >> 15) }

// limit is the Recommendation's LIMIT: the reconstructed sub-band signals
// are clipped to 15 bits.
func limit(v int32) int32 { return max(-16384, min(16383, v)) }

// ---- lower sub-band: 6-bit quantizer, 4-bit feedback to the predictor

// q6 holds the lower sub-band quantizer decision levels Q6(MIL), scaled by 8
// at use through DETL.
var q6 = [31]int32{
	0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650,
	714, 786, 858, 940, 1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195,
	2557, 2919, 3200,
}

// ilNeg and ilPos map the interval MIL (1..30) to the code IL for a
// negative (SIL = -1) and a non-negative difference signal.
var (
	ilNeg = [31]uint8{
		0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18,
		17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4,
	}
	ilPos = [31]uint8{
		0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46,
		45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32,
	}
)

// quantL is QUANTL: the 6-bit code for the lower sub-band difference EL.
func quantL(el, detl int32) int {
	wd := el // magnitude, with negative values one's-complemented
	if el < 0 {
		wd = -el - 1
	}
	mil := 1 // Q6(0) = 0 never exceeds wd
	for mil < 30 && q6[mil]*detl>>12 <= wd {
		mil++
	}
	if el < 0 {
		return int(ilNeg[mil])
	}
	return int(ilPos[mil])
}

// ril4 maps the 4-bit code IL>>2 to the inverse quantizer level index; its
// top half holds the non-negative levels (RISIL = 0).
var ril4 = [16]uint8{0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0}

// oq4 is the 4-bit inverse quantizer output level table OQ4.
var oq4 = [8]int32{0, 150, 323, 530, 786, 1121, 1612, 2557}

// invQAL is INVQAL: the quantized difference DLT from the 4 most significant
// bits of IL (the part a 48 kbit/s decoder also receives, which is why the
// predictor feeds on it).
func invQAL(il int, detl int32) int32 {
	ril := il >> 2
	wd := oq4[ril4[ril]] << 3
	if ril < 8 {
		wd = -wd
	}
	return mult(detl, wd)
}

// ril6 maps the 6-bit code to the 6-bit inverse quantizer level index, and
// the codes below 32 plus 62 and 63 are negative levels (RISI6).
var ril6 = [64]uint8{
	1, 1, 1, 1, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19,
	18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3,
	30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15,
	14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 2, 1,
}

// oq6 is the 6-bit inverse quantizer output level table OQ6.
var oq6 = [31]int32{
	0, 17, 54, 91, 130, 170, 211, 254, 300, 347, 396, 447, 501, 558, 618,
	682, 750, 822, 899, 982, 1072, 1170, 1279, 1399, 1535, 1689, 1873, 2088,
	2376, 2738, 3101,
}

// invQBL6 is INVQBL in mode 1: the decoder's output difference DL from all
// 6 bits of IL.
func invQBL6(il int, detl int32) int32 {
	wd := oq6[ril6[il]] << 3
	if il < 32 || il >= 62 {
		wd = -wd
	}
	return mult(detl, wd)
}

// wl is the lower sub-band log scale factor multiplier table WL.
var wl = [8]int32{-60, -30, 58, 172, 334, 538, 1198, 3042}

// stepLow adapts the lower sub-band to the code IL: INVQAL, LOGSCL, SCALEL
// and the predictor.
func (b *g722Band) stepLow(il int) {
	b.adapt(invQAL(il, b.det))
	b.nb = max(0, min(18432, mult(b.nb, 32512)+wl[ril4[il>>2]]))
	b.det = scale(b.nb, 8)
}

// ---- higher sub-band: 2-bit quantizer

// quantH is QUANTH: the 2-bit code for the higher sub-band difference EH
// (decision level Q2 = 564).
func quantH(eh, deth int32) int {
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

// ih2 maps IH to the level index in oq2 and wh; codes 0 and 1 are negative.
var (
	ih2 = [4]uint8{2, 1, 2, 1}
	oq2 = [3]int32{0, 202, 926}
	wh  = [3]int32{0, -214, 798}
)

// invQAH is INVQAH: the quantized difference DH for the code IH.
func invQAH(ih int, deth int32) int32 {
	wd := oq2[ih2[ih]] << 3
	if ih < 2 {
		wd = -wd
	}
	return mult(wd, deth)
}

// stepHigh adapts the higher sub-band to the code IH: INVQAH, LOGSCH,
// SCALEH and the predictor.
func (b *g722Band) stepHigh(ih int) {
	b.adapt(invQAH(ih, b.det))
	b.nb = max(0, min(22528, mult(b.nb, 32512)+wh[ih2[ih]]))
	b.det = scale(b.nb, 10)
}

// ilb is the Recommendation's antilog table ILB for SCALEL and SCALEH.
var ilb = [32]int32{
	2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599,
	2656, 2714, 2774, 2834, 2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371,
	3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
}

// scale is SCALEL (shift 8) and SCALEH (shift 10): the linear scale factor
// from the logarithmic one, ILB(NB>>6 & 31) shifted by shift - NB>>11, times 4.
func scale(nb int32, shift int32) int32 {
	wd := ilb[nb>>6&31]
	if s := shift - nb>>11; s >= 0 {
		wd >>= s
	} else {
		wd <<= -s
	}
	return wd << 2
}

// ---- block 4: the adaptive predictor, identical for both sub-bands

// adapt takes the quantized difference signal dq (DLT or DH) and updates the
// predictor: PARREC, RECONS, UPZERO and FILTEZ, UPPOL2, UPPOL1, FILTEP,
// PREDIC. (FILTEZ reads only what UPZERO writes, so it may run before the
// pole updates.)
func (b *g722Band) adapt(dq int32) {
	b.d[0] = dq
	b.p[0] = sat16(dq + b.sz)
	b.r[0] = sat16(b.s + dq)
	b.sz = b.zeroSection()
	b.uppol2()
	b.uppol1()
	b.s = sat16(b.filtep() + b.sz)
}

// zeroSection is UPZERO and FILTEZ in one pass: it updates the six
// zero-section coefficients by sign correlation of the difference signal,
// shifts the signal's delay line and returns the section's prediction SZ.
// Two of the reference's saturations cannot act here and are left out: a
// coefficient leaky-integrates steps of 128 with factor 255/256, so it stays
// within 16 bits; and |DLT| <= 10228 (DETL <= 16384 times OQ4 <= 2557*8, >> 15;
// DH is smaller), so 2*DLT is no 16-bit overflow and mult needs no clamp.
func (b *g722Band) zeroSection() int32 {
	var step int32 = 128
	if b.d[0] == 0 {
		step = 0
	}
	var sz int32
	for i := 6; i > 0; i-- {
		g := step
		if b.d[i]^b.d[0] < 0 { // signs differ (zero counts as positive)
			g = -step
		}
		b.b[i] = g + b.b[i]*32640>>15
		b.d[i] = b.d[i-1]
		sz = sat16(sz + b.d[i]<<1*b.b[i]>>15)
	}
	return sz
}

// uppol2 updates the second pole coefficient A2 (from the old A1).
func (b *g722Band) uppol2() {
	neg0 := b.p[0] < 0
	wd2 := sat16(b.a[1] << 2)
	if neg0 == (b.p[1] < 0) {
		wd2 = sat16(-wd2)
	}
	wd2 >>= 7
	var wd3 int32 = -128
	if neg0 == (b.p[2] < 0) {
		wd3 = 128
	}
	apl2 := sat16(sat16(wd2+wd3) + mult(b.a[2], 32512))
	b.a[2] = max(-12288, min(12288, apl2))
}

// uppol1 updates the first pole coefficient A1, bounded by the new A2 for
// stability, and shifts the partially reconstructed signal's delay line.
func (b *g722Band) uppol1() {
	var wd1 int32 = -192
	if (b.p[0] < 0) == (b.p[1] < 0) {
		wd1 = 192
	}
	apl1 := sat16(wd1 + mult(b.a[1], 32640))
	wd3 := 15360 - b.a[2]
	b.a[1] = max(-wd3, min(wd3, apl1))
	b.p[2], b.p[1] = b.p[1], b.p[0]
}

// filtep shifts the reconstructed signal's delay line and returns the
// second-order pole section's prediction SP.
func (b *g722Band) filtep() int32 {
	b.r[2], b.r[1] = b.r[1], b.r[0]
	return sat16(mult(b.a[1], sat16(b.r[1]<<1)) + mult(b.a[2], sat16(b.r[2]<<1)))
}

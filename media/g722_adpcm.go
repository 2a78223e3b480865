package media

// The sub-band ADPCM of G.722: quantizers, inverse quantizers and quantizer
// scale factor adaptation (blocks 2 and 3), shared by the encoder and the
// decoder so both track the same state. Names in comments are the
// Recommendation's. The Recommendation's tables are kept as it prints them;
// what the hot path indexes are tables derived from them once, at start-up
// (g722_tables.go), which fold each table chain and sign rule into one
// lookup.

// g722Band is one sub-band's ADPCM state.
type g722Band struct {
	s   int32 // SL/SH: predictor output
	sz  int32 // SZL/SZH: its zero-section part
	nb  int32 // NBL/NBH: logarithmic quantizer scale factor
	det int32 // DETL/DETH: linear quantizer scale factor

	a1, a2 int32    // AL1, AL2 / AH1, AH2: pole-section coefficients
	b      [6]int32 // BL1..BL6 / BH1..BH6: zero-section coefficients
	d      [6]int32 // DLT(1..6) / DH(1..6): past quantized differences
	dNeg   uint32   // bit i-1 set: DLT(i) < 0
	pNeg   uint32   // bit 0 set: PLT(1) < 0, bit 1: PLT(2) < 0
	r1, r2 int32    // RLT(1), RLT(2) doubled and saturated, as FILTEP uses them
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

// quantL is QUANTL: the 6-bit code for the lower sub-band difference
// EL = XL - SL. The Recommendation searches for the interval MIL with
// Q6(MIL-1)*DETL/8 <= |EL| < Q6(MIL)*DETL/8 (in 12-bit fixed point, with
// negative EL one's-complemented); since Q6(m)*DETL>>12 <= WD exactly when
// Q6(m) <= ((WD+1)<<12 - 1) / DETL, one division, done as a multiply by
// DETL's reciprocal, and a table give the interval with no search.
func (b *g722Band) quantL(xl int32) int {
	el := sat16(xl - b.s)
	wd := el ^ el>>31 // |EL|, negative values one's-complemented
	n := uint64(wd+1)<<12 - 1
	t := n * lowDet[b.nb>>6&511].recip >> detRecipShift // n / DETL
	return int(lowCode[el>>31&1][min(t, lowCodeLen-1)])
}

// ril4 maps the 4-bit code IL>>2 to the inverse quantizer level index; its
// top half holds the non-negative levels (RISIL = 0).
var ril4 = [16]uint8{0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0}

// oq4 is the 4-bit inverse quantizer output level table OQ4.
var oq4 = [8]int32{0, 150, 323, 530, 786, 1121, 1612, 2557}

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

// wl is the lower sub-band log scale factor multiplier table WL.
var wl = [8]int32{-60, -30, 58, 172, 334, 538, 1198, 3042}

// invQBL6 is INVQBL in mode 1: the decoder's output difference DL from all
// 6 bits of IL. Its mult cannot saturate: DETL*OQ6*8 >> 15 is below 2^15.
func (b *g722Band) invQBL6(il int) int32 {
	return b.det * lowOQ6[il&63] >> 15
}

// lowMaxNB and highMaxNB are LOGSCL's and LOGSCH's upper limits of NB.
const (
	lowMaxNB  = 18432
	highMaxNB = 22528
)

// stepLow adapts the lower sub-band to the code IL: INVQAL (the quantized
// difference DLT from the 4 most significant bits of IL, the part a 48
// kbit/s decoder also receives, which is why the predictor feeds on it),
// the predictor, LOGSCL and SCALEL.
func (b *g722Band) stepLow(il int) { b.step(lowQ4[il>>2&15], lowMaxNB, &lowDet) }

// ---- higher sub-band: 2-bit quantizer

// quantH is QUANTH: the 2-bit code for the higher sub-band difference
// EH = XH - SH (decision level Q2 = 564): 0 and 1 for negative EH, 0 and 2
// for the outer interval.
func (b *g722Band) quantH(xh int32) int {
	eh := sat16(xh - b.s)
	wd := eh ^ eh>>31
	ih := 3
	if wd >= 564*b.det>>12 { // MIH = 2
		ih = 2
	}
	if eh < 0 {
		ih -= 2
	}
	return ih
}

// ih2 maps IH to the level index in oq2 and wh; codes 0 and 1 are negative.
var (
	ih2 = [4]uint8{2, 1, 2, 1}
	oq2 = [3]int32{0, 202, 926}
	wh  = [3]int32{0, -214, 798}
)

// invQAH is INVQAH: the quantized difference DH for the code IH.
func (b *g722Band) invQAH(ih int) int32 {
	return b.det * highQ2[ih&3].oq >> 15
}

// stepHigh adapts the higher sub-band to the code IH: INVQAH, the
// predictor, LOGSCH and SCALEH.
func (b *g722Band) stepHigh(ih int) { b.step(highQ2[ih&3], highMaxNB, &highDet) }

// ilb is the Recommendation's antilog table ILB for SCALEL and SCALEH.
var ilb = [32]int32{
	2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599,
	2656, 2714, 2774, 2834, 2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371,
	3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
}

// scale is SCALEL (shift 8) and SCALEH (shift 10): the linear scale factor
// from the logarithmic one, ILB(NB>>6 & 31) shifted by shift - NB>>11, times 4.
// It depends on NB>>6 only, so lowDet and highDet tabulate it.
func scale(nb int32, shift int32) int32 {
	wd := ilb[nb>>6&31]
	if s := shift - nb>>11; s >= 0 {
		wd >>= s
	} else {
		wd <<= -s
	}
	return wd << 2
}

package media

// Lookup tables derived once from the Recommendation's tables, so that the
// per-sample path does one load where the Recommendation chains several
// tables and a sign rule. Each says which block it stands for.

// detEntry is a linear scale factor DET with its reciprocal rounded up,
// recip = ceil(2^41 / DET), so that QUANTL divides by a multiply: for every
// n < 2^27 and DET <= 2^14 (DETL and DETH are at most 16384),
// n*recip >> 41 == n/DET, since the rounding error, below DET, times n
// stays under 2^41.
type detEntry struct {
	det   int32
	recip uint64
}

const detRecipShift = 41

// lowDet and highDet are SCALEL and SCALEH tabulated by NB>>6 (the only part
// of NB they read): at most 288 for NBL <= 18432 and 352 for NBH <= 22528.
// The tables have 512 entries so that a mask, not a bounds check, keeps the
// index in range.
var (
	lowDet  = detTable(lowMaxNB, 8)
	highDet = detTable(highMaxNB, 10)
)

func detTable(maxNB, shift int32) (t [512]detEntry) {
	for i := range maxNB>>6 + 1 {
		det := scale(i<<6, shift)
		t[i] = detEntry{det, (1<<detRecipShift + uint64(det) - 1) / uint64(det)}
	}
	return t
}

// lowCode[s][t] is QUANTL's code IL for the quotient t = ((WD+1)<<12 - 1) /
// DETL and the sign s of EL (1: negative): MIL is 1 plus the number of
// levels Q6(1..29) that are <= t, so from t = Q6(29) on it is 30.
const lowCodeLen = 2919 + 1 // Q6(29) + 1

var lowCode = func() (t [2][lowCodeLen]uint8) {
	mil := 1
	for i := range int32(lowCodeLen) {
		for mil < 30 && q6[mil] <= i {
			mil++
		}
		t[0][i], t[1][i] = ilPos[mil], ilNeg[mil]
	}
	return t
}()

// g722InvQ is one inverse quantizer level, signed, with the log scale
// factor multiplier its code adds.
type g722InvQ struct {
	oq int32 // OQ4 or OQ2 level times 8, negative for a negative code
	w  int32 // WL or WH
}

// lowQ4 is INVQAL and LOGSCL's WL lookup by the 4-bit code IL>>2 (through
// RIL4, the sign bit RISIL and OQ4); lowOQ6 is INVQBL's by the 6-bit code
// (RIL6, RISI6 and OQ6); highQ2 is INVQAH and LOGSCH's by IH.
var (
	lowQ4 = func() (t [16]g722InvQ) {
		for i := range t {
			t[i] = g722InvQ{signed(oq4[ril4[i]]<<3, i < 8), wl[ril4[i]]}
		}
		return t
	}()
	lowOQ6 = func() (t [64]int32) {
		for i := range t {
			t[i] = signed(oq6[ril6[i]]<<3, i < 32 || i >= 62)
		}
		return t
	}()
	highQ2 = func() (t [4]g722InvQ) {
		for i := range t {
			t[i] = g722InvQ{signed(oq2[ih2[i]]<<3, i < 2), wh[ih2[i]]}
		}
		return t
	}()
)

func signed(v int32, neg bool) int32 {
	if neg {
		return -v
	}
	return v
}

// zeroSteps[k] holds UPZERO's six gradient steps SG(i)*128 for the sign
// pattern k: bit i-1 set when DLT(i) and DLT(0) differ in sign (zero counts
// as positive), -128, else +128; k = 64, for DLT(0) = 0, is all zeros.
var zeroSteps = func() (t [65][6]int32) {
	for k := range 64 {
		for i := range 6 {
			t[k][i] = 128
			if k>>i&1 == 1 {
				t[k][i] = -128
			}
		}
	}
	return t
}()

// poleStep is what UPPOL2 and UPPOL1 take from the signs of PLT(0..2).
type poleStep struct {
	sg  int32 // -1 when PLT(0) and PLT(1) agree in sign (UPPOL2 negates), else 1
	wd3 int32 // UPPOL2's +128 when PLT(0) and PLT(2) agree, else -128
	wd1 int32 // UPPOL1's +192 when PLT(0) and PLT(1) agree, else -192
}

// poleSteps[k]: bit 0 of k set when PLT(0) < 0, bit 1 PLT(1), bit 2 PLT(2).
var poleSteps = func() (t [8]poleStep) {
	for k := range t {
		p0, p1, p2 := k&1, k>>1&1, k>>2
		t[k] = poleStep{1, -128, -192}
		if p0 == p1 {
			t[k].sg, t[k].wd1 = -1, 192
		}
		if p0 == p2 {
			t[k].wd3 = 128
		}
	}
	return t
}()

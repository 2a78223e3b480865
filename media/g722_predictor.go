package media

// Block 4 of G.722, the adaptive predictor, identical for both sub-bands,
// with the inverse quantizer and the scale factor adaptation: one sub-band
// sample's adaptation, with the results of the 16-bit arithmetic of the
// ITU-T reference. Where a reference saturation cannot act (the operands'
// ranges are stated) it is left out; where an expression has a cheaper
// exact equivalent, that is used (stated too); the signals whose only use
// is their sign are kept as sign bits, and the sign-dependent steps come
// from tables (g722_tables.go). g722_reference_test.go holds the plain
// blocks this must equal.

// step adapts the sub-band to one sample's inverse quantizer level q:
// INVQAL or INVQAH, PARREC, RECONS, UPZERO, FILTEZ (which reads only what
// UPZERO writes, so it may run before the pole updates), UPPOL2, UPPOL1,
// FILTEP, PREDIC, then LOGSCL or LOGSCH (within 0..maxNB) and SCALEL or
// SCALEH (dets). It is the one call per sub-band sample, written out in one
// piece: in Go's ABI a call spills every live register, and the sample's
// work is small.
func (b *g722Band) step(q g722InvQ, maxNB int32, dets *[512]detEntry) {
	dq := b.det * q.oq >> 15 // INVQAL, INVQAH: |DLT| <= 10228, |DH| <= 3704
	// LOGSCL, LOGSCH (NB*32512 >> 15 == NB*127 >> 7), SCALEL, SCALEH: they
	// depend on nothing below, so they go first, for the registers.
	b.nb = max(0, min(maxNB, b.nb*127>>7+q.w))
	b.det = dets[b.nb>>6&511].det

	p0 := uint32(dq+b.sz) >> 31  // PARREC: 1 when PLT(0) < 0
	r0 := sat16((b.s + dq) << 1) // RECONS, doubled: == sat16(sat16(SL+DLT) << 1)

	// UPZERO: leak 255/256 (BL*32640 >> 15) and the sign-correlation step;
	// the coefficients stay within 16 bits. Then the delay line shifts:
	// DLT(1) becomes dq, DLT(2..6) the old DLT(1..5).
	g, bl, dlt := b.zeroSteps(dq), &b.b, &b.d
	bl1, bl2, bl3 := bl[0]*32640>>15+g[0], bl[1]*32640>>15+g[1], bl[2]*32640>>15+g[2]
	bl4, bl5, bl6 := bl[3]*32640>>15+g[3], bl[4]*32640>>15+g[4], bl[5]*32640>>15+g[5]
	bl[0], bl[1], bl[2], bl[3], bl[4], bl[5] = bl1, bl2, bl3, bl4, bl5, bl6
	dlt2, dlt3, dlt4, dlt5, dlt6 := dlt[0], dlt[1], dlt[2], dlt[3], dlt[4]
	dlt[0], dlt[1], dlt[2], dlt[3], dlt[4], dlt[5] = dq, dlt2, dlt3, dlt4, dlt5, dlt6
	b.dNeg = (b.dNeg<<1 | uint32(dq)>>31) & 63

	// FILTEZ: mult(2*DLT, BL) == (DLT*BL) >> 14, with no overflow. The
	// reference adds with saturation from i = 6 down to 1; plain adds give
	// the same unless a partial sum leaves 16 bits, which one test catches.
	// The sum runs offset by 32768: a partial sum within 16 bits is then
	// within 0..65535, and out collects the bits above 15 of every one.
	sum := 32768 + dlt6*bl6>>14 + dlt5*bl5>>14
	out := sum
	sum += dlt4 * bl4 >> 14
	out |= sum
	sum += dlt3 * bl3 >> 14
	out |= sum
	sum += dlt2 * bl2 >> 14
	out |= sum
	sum += dq * bl1 >> 14
	sz := sum - 32768
	if (out|sum)>>16 != 0 {
		sz = b.filtezSaturated()
	}
	b.sz = sz

	// UPPOL2: WD2 = sat16(4*AL1), negated with saturation when PLT(0) and
	// PLT(1) agree in sign, >> 7, is SG*clamp(AL1, +-8191) >> 5 for every
	// AL1; AL2*32512 >> 15 == AL2*127 >> 7. UPPOL1: AL1*32640 >> 15 ==
	// AL1*255 >> 8. No add on the way saturates (|AL1| <= 27648,
	// |AL2| <= 12288). The signs' steps: poleStep.
	k := &poleSteps[(p0|b.pNeg<<1)&7]
	a1 := b.a1
	a2 := max(-12288, min(12288, k.sg*max(-8191, min(8191, a1))>>5+k.wd3+b.a2*127>>7))
	lim := 15360 - a2
	a1 = max(-lim, min(lim, k.wd1+a1*255>>8))
	b.a1, b.a2, b.pNeg = a1, a2, (b.pNeg<<1|p0)&3

	// FILTEP, PREDIC: neither mult saturates on its own.
	r1 := b.r1
	b.r2, b.r1 = r1, r0
	b.s = sat16(sat16(a1*r0>>15+a2*r1>>15) + sz)
}

// zeroSteps returns UPZERO's six gradient steps for DLT(0) = dq: +-128 by
// whether DLT(1..6) agree with it in sign (zero counts as positive), none
// when it is 0.
func (b *g722Band) zeroSteps(dq int32) *[6]int32 {
	k := (b.dNeg ^ uint32(dq>>31)) & 63
	if dq == 0 {
		k = 64
	}
	return &zeroSteps[k]
}

// filtezSaturated is FILTEZ with every add saturating, for the rare sample
// where the plain sum overflows on the way (none of the test signals has
// one; TestG722StepMatchesReference makes them).
func (b *g722Band) filtezSaturated() int32 {
	var sz int32
	for i := 5; i >= 0; i-- {
		sz = sat16(sz + b.d[i]*b.b[i]>>14)
	}
	return sz
}

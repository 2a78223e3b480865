package media

// Block 4 of G.722, the adaptive predictor, identical for both sub-bands:
// PARREC, RECONS, UPZERO, FILTEZ, UPPOL2, UPPOL1, FILTEP and PREDIC, in the
// 16-bit arithmetic of the ITU-T reference, run by g722Band.step in that
// order (FILTEZ reads only what UPZERO writes, so it may run before the
// pole updates). Where a reference saturation cannot act (the operands'
// ranges are stated) it is left out, and the signals whose only use is
// their sign are kept as sign bits. Each piece is small enough to inline.

// parrec is PARREC's sign: 1 when PLT(0) = DLT + SZL is negative (its
// saturation would not change the sign).
func (b *g722Band) parrec(dq int32) uint32 { return uint32(dq+b.sz) >> 31 }

// recons is RECONS doubled for FILTEP: sat16(2*(SL+DLT)), which equals
// sat16(sat16(SL+DLT) << 1).
func (b *g722Band) recons(dq int32) int32 { return sat16((b.s + dq) << 1) }

// upzero is UPZERO: the six zero-section coefficients leaky-integrate
// (factor 255/256, BL*32640 >> 15) steps of +-128 by the sign correlation
// of DLT(0) with DLT(1..6), no step when DLT(0) is 0, which keeps them
// within 16 bits; then the delay line of DLT shifts.
func (b *g722Band) upzero(dq int32) {
	k := b.dNeg ^ uint32(dq>>31)&63 // sign differences of DLT(1..6) to DLT(0)
	if dq == 0 {
		k = 64
	}
	g, c := &zeroSteps[k&127], &b.b
	c[0] = c[0]*32640>>15 + g[0]
	c[1] = c[1]*32640>>15 + g[1]
	c[2] = c[2]*32640>>15 + g[2]
	c[3] = c[3]*32640>>15 + g[3]
	c[4] = c[4]*32640>>15 + g[4]
	c[5] = c[5]*32640>>15 + g[5]
	d := &b.d
	d[5], d[4], d[3], d[2], d[1], d[0] = d[4], d[3], d[2], d[1], d[0], dq
	b.dNeg = (b.dNeg<<1 | uint32(dq)>>31) & 63
}

// filtez is FILTEZ: SZ = sum of mult(2*DLT(i), BL(i)), which is
// (DLT*BL) >> 14 as |DLT| <= 10228 (DETL <= 16384 times OQ4 <= 2557*8,
// >> 15; DH is smaller). The reference adds with saturation, from i = 6
// down to 1; adding without it gives the same unless a partial sum leaves
// 16 bits, which is checked once for all.
func (b *g722Band) filtez() int32 {
	d, c := &b.d, &b.b
	sz := d[5]*c[5]>>14 + d[4]*c[4]>>14
	out := sz + 32768 // bits above 15 set when a partial sum overflows
	sz += d[3] * c[3] >> 14
	out |= sz + 32768
	sz += d[2] * c[2] >> 14
	out |= sz + 32768
	sz += d[1] * c[1] >> 14
	out |= sz + 32768
	sz += d[0] * c[0] >> 14
	if (out|(sz+32768))>>16 != 0 {
		return b.filtezSaturated()
	}
	return sz
}

// filtezSaturated is FILTEZ with every add saturating, for the rare case
// where the plain sum overflows on the way.
//
//go:noinline
func (b *g722Band) filtezSaturated() int32 {
	var sz int32
	for i := 5; i >= 0; i-- {
		sz = sat16(sz + b.d[i]*b.b[i]>>14)
	}
	return sz
}

// uppol is UPPOL2 then UPPOL1 for the sign p0 of PLT(0), and shifts the
// signs of PLT. UPPOL2's WD2 = sat16(4*AL1), negated with saturation when
// PLT(0) and PLT(1) agree in sign, >> 7, is SG*clamp(AL1, +-8191) >> 5 for
// every AL1; AL2*32512 >> 15 == AL2*127 >> 7 and AL1*32640 >> 15 ==
// AL1*255 >> 8; no add on the way saturates (|AL1| <= 27648).
func (b *g722Band) uppol(p0 uint32) {
	k := &poleSteps[(p0|b.pNeg<<1)&7]
	a2 := max(-12288, min(12288, k.sg*max(-8191, min(8191, b.a1))>>5+k.wd3+b.a2*127>>7))
	lim := 15360 - a2 // UPPOL1's stability bound
	b.a1 = max(-lim, min(lim, k.wd1+b.a1*255>>8))
	b.a2 = a2
	b.pNeg = (b.pNeg<<1 | p0) & 3
}

// predic is FILTEP and PREDIC: SL = SPL + SZL with SPL the pole section's
// prediction from the doubled RLT(1), RLT(2); |AL1| <= 27648 and
// |AL2| <= 12288, so neither mult saturates on its own.
func (b *g722Band) predic() int32 {
	return sat16(sat16(b.a1*b.r1>>15+b.a2*b.r2>>15) + b.sz)
}

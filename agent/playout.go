package agent

// playout is the agent's audio waiting for the pacer: a ring of 8 kHz
// samples that grows on demand up to max samples, never beyond. Positions
// (queued, played) count samples since the session began, so marks can
// name the point in the stream they follow.
type playout struct {
	buf     []int16
	head, n int
	max     int

	queued int64 // samples ever accepted
	played int64 // samples ever handed to the pacer or dropped by clear

	marks []queuedMark

	// partialWait is set when the pacer found less than a frame: it gets
	// one more tick for the rest to arrive before the part is padded out.
	partialWait bool
}

type queuedMark struct {
	name string
	at   int64 // the mark is reached when played >= at
}

func newPlayout(max int) playout { return playout{max: max} }

// push appends as many samples as fit and returns how many that was.
func (p *playout) push(s []int16) int {
	room := p.max - p.n
	if len(s) > room {
		s = s[:room]
	}
	if len(s) == 0 {
		return 0
	}
	if p.n+len(s) > len(p.buf) {
		p.grow(p.n + len(s))
	}
	tail := (p.head + p.n) % len(p.buf)
	k := copy(p.buf[tail:], s)
	copy(p.buf, s[k:])
	p.n += len(s)
	p.queued += int64(len(s))
	return len(s)
}

func (p *playout) grow(need int) {
	size := max(2*len(p.buf), need, 8*FrameSamples)
	size = min(size, p.max)
	nb := make([]int16, size)
	if p.n > 0 {
		k := copy(nb, p.buf[p.head:min(p.head+p.n, len(p.buf))])
		copy(nb[k:p.n], p.buf)
	}
	p.buf, p.head = nb, 0
}

// pop moves up to len(dst) samples into dst and returns how many.
func (p *playout) pop(dst []int16) int {
	n := min(len(dst), p.n)
	if n == 0 {
		return 0
	}
	k := copy(dst[:n], p.buf[p.head:min(p.head+n, len(p.buf))])
	copy(dst[k:n], p.buf)
	p.head = (p.head + n) % len(p.buf)
	p.n -= n
	p.played += int64(n)
	if p.n == 0 {
		p.head = 0
	}
	return n
}

// drop empties the queue and returns how many samples it held.
func (p *playout) drop() int {
	n := p.n
	p.played += int64(n)
	p.head, p.n = 0, 0
	p.partialWait = false
	return n
}

// reached removes and returns the marks the playout has passed.
func (p *playout) reached(dst []string) []string {
	i := 0
	for ; i < len(p.marks) && p.marks[i].at <= p.played; i++ {
		dst = append(dst, p.marks[i].name)
	}
	if i > 0 {
		p.marks = append(p.marks[:0], p.marks[i:]...)
	}
	return dst
}

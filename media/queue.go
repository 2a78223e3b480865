package media

import "sync"

// FrameQueue hands 20 ms PCM frames from one goroutine (a leg's receive
// path, an agent link) to another (a pacer). Push never blocks: past its
// capacity the oldest frame is dropped, so a stalled reader costs bounded
// memory and bounded delay. A frame keeps its rate: 8 kHz frames come out
// as 160 samples and 16 kHz ones as 320 (see FrameRate), so a queue
// between legs of different codecs leaves the resampling to the pacer of
// the leg that needs it.
type FrameQueue struct {
	mu      sync.Mutex
	ring    [][WideFrameSamples]int16
	lens    []int
	head, n int
	out     [WideFrameSamples]int16
	dropped uint64
}

// NewFrameQueue makes a queue holding up to capacity frames.
func NewFrameQueue(capacity int) *FrameQueue {
	return &FrameQueue{ring: make([][WideFrameSamples]int16, capacity), lens: make([]int, capacity)}
}

// Push copies one frame in, padded with silence to a whole frame of its
// rate.
func (q *FrameQueue) Push(pcm []int16) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == len(q.ring) {
		q.head = (q.head + 1) % len(q.ring)
		q.n--
		q.dropped++
	}
	i := (q.head + q.n) % len(q.ring)
	n := FrameLen(FrameRate(len(pcm)))
	slot := q.ring[i][:n]
	clear(slot[copy(slot, pcm):])
	q.lens[i] = n
	q.n++
}

// Pop returns the oldest frame, valid until the next Pop, or false when
// the queue is empty.
func (q *FrameQueue) Pop() ([]int16, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return nil, false
	}
	n := copy(q.out[:], q.ring[q.head][:q.lens[q.head]])
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	return q.out[:n], true
}

// Clear drops every queued frame (barge-in).
func (q *FrameQueue) Clear() {
	q.mu.Lock()
	q.head, q.n = 0, 0
	q.mu.Unlock()
}

// Len is the number of queued frames.
func (q *FrameQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// Dropped counts frames pushed out by overflow.
func (q *FrameQueue) Dropped() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

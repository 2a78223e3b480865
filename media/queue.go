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
	mu       sync.Mutex
	ring     [][WideFrameSamples]int16 // grows to capacity as frames wait
	lens     []int
	capacity int
	head, n  int
	out      [WideFrameSamples]int16
	dropped  uint64
}

// queueStart is a queue's room at first: a reader that keeps up (the
// pacer, every 20 ms) leaves a frame or two waiting, so most queues never
// grow.
const queueStart = 4

// NewFrameQueue makes a queue holding up to capacity frames.
func NewFrameQueue(capacity int) *FrameQueue {
	capacity = max(1, capacity)
	n := min(capacity, queueStart)
	return &FrameQueue{ring: make([][WideFrameSamples]int16, n), lens: make([]int, n), capacity: capacity}
}

// grow doubles the ring (up to capacity), oldest frame first.
func (q *FrameQueue) grow() {
	n := min(q.capacity, 2*len(q.ring))
	ring, lens := make([][WideFrameSamples]int16, n), make([]int, n)
	for i := range q.n {
		j := (q.head + i) % len(q.ring)
		ring[i], lens[i] = q.ring[j], q.lens[j]
	}
	q.ring, q.lens, q.head = ring, lens, 0
}

// Push copies one frame in, padded with silence to a whole frame of its
// rate.
func (q *FrameQueue) Push(pcm []int16) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == len(q.ring) && len(q.ring) < q.capacity {
		q.grow()
	}
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

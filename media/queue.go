package media

import "sync"

// FrameQueue hands 20 ms PCM frames from one goroutine (a leg's receive
// path, an agent link) to another (a pacer). Push never blocks: past its
// capacity the oldest frame is dropped, so a stalled reader costs bounded
// memory and bounded delay.
type FrameQueue struct {
	mu      sync.Mutex
	ring    [][]int16
	head, n int
	out     []int16
	dropped uint64
}

// NewFrameQueue makes a queue holding up to capacity frames.
func NewFrameQueue(capacity int) *FrameQueue {
	q := &FrameQueue{ring: make([][]int16, capacity), out: make([]int16, FrameSamples)}
	for i := range q.ring {
		q.ring[i] = make([]int16, FrameSamples)
	}
	return q
}

// Push copies one frame in (shorter frames are padded with silence).
func (q *FrameQueue) Push(pcm []int16) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == len(q.ring) {
		q.head = (q.head + 1) % len(q.ring)
		q.n--
		q.dropped++
	}
	slot := q.ring[(q.head+q.n)%len(q.ring)]
	clear(slot[copy(slot, pcm):])
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
	copy(q.out, q.ring[q.head])
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	return q.out, true
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

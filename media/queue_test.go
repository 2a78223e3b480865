package media

import "testing"

func TestFrameQueueDropsOldestAndPads(t *testing.T) {
	q := NewFrameQueue(3)
	for i := range 5 {
		q.Push([]int16{int16(i), 7})
	}
	if q.Len() != 3 || q.Dropped() != 2 {
		t.Fatalf("len %d dropped %d, want 3 and 2", q.Len(), q.Dropped())
	}
	for want := int16(2); want < 5; want++ {
		f, ok := q.Pop()
		if !ok || f[0] != want || f[1] != 7 || len(f) != FrameSamples || f[FrameSamples-1] != 0 {
			t.Fatalf("pop %d: ok=%v frame head %v", want, ok, f[:2])
		}
	}
	if _, ok := q.Pop(); ok {
		t.Fatal("pop from an empty queue")
	}
	q.Push(make([]int16, FrameSamples))
	q.Clear()
	if q.Len() != 0 {
		t.Fatal("clear left frames")
	}
}

func TestRingbackCadence(t *testing.T) {
	r := NewRingback()
	on, off := 0, 0
	for range 300 {
		f, ok := r.Next()
		if ok {
			on++
			if len(f) != FrameSamples {
				t.Fatal("short frame")
			}
		} else {
			off++
		}
	}
	if on != 100 || off != 200 {
		t.Fatalf("on %d off %d frames per 6 s cycle, want 100 and 200", on, off)
	}
}

// A queue starts small and grows to its capacity while frames wait,
// keeping their order across the growth.
func TestFrameQueueGrowsInOrder(t *testing.T) {
	q := NewFrameQueue(25)
	q.Push([]int16{-1})
	q.Pop() // the ring's head is no longer at its start
	for i := range 30 {
		q.Push([]int16{int16(i)})
	}
	if q.Len() != 25 || q.Dropped() != 5 {
		t.Fatalf("len %d dropped %d, want 25 and 5", q.Len(), q.Dropped())
	}
	for want := int16(5); want < 30; want++ {
		if f, ok := q.Pop(); !ok || f[0] != want {
			t.Fatalf("pop: %v %v, want %d", f[:1], ok, want)
		}
	}
}

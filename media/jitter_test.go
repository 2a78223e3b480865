package media

import (
	"bytes"
	"testing"
)

// Slots start small and grow for a longer payload, keeping what they
// already hold.
func TestJitterBufferGrowsForLongPayloads(t *testing.T) {
	j := newJitterBuffer(3)
	short := bytes.Repeat([]byte{1}, FrameSamples)
	long := bytes.Repeat([]byte{2}, 1000) // 125 ms of G.711
	if j.push(10, slotAudio, formatULaw, short, 0) != pushOK || j.push(11, slotAudio, formatULaw, long, 0) != pushOK {
		t.Fatal("push refused")
	}
	if j.slotRoom() < len(long) {
		t.Fatalf("slot room %d after a %d-octet payload", j.slotRoom(), len(long))
	}
	for _, want := range [][]byte{short, long} {
		s := j.pop(0)
		if s == nil || !bytes.Equal(s.payload[:s.n], want) {
			t.Fatalf("popped %v, want %d octets of %d", s, len(want), want[0])
		}
	}
	huge := bytes.Repeat([]byte{3}, 2*maxPayload)
	j.push(12, slotAudio, formatULaw, huge, 0)
	if s := j.pop(0); s == nil || s.n != maxPayload || j.slotRoom() != maxPayload {
		t.Fatalf("a payload over maxPayload: slot %v, room %d", s, j.slotRoom())
	}
}

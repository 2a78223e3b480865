package media

import "time"

// comfortNoise is the reader's state for RFC 3389 comfort noise. A caller
// behind voice-activity detection stops sending audio while silent and
// sends a CN packet instead, at the start of the silence and whenever the
// noise changes (often seconds apart). Each CN packet counts as media
// activity for the RTP timeout (the caller is there, just quiet), and from
// the first one until the voice resumes OnAudio receives frames of silence
// at the frame rate, as if the silence had been sent as audio: the agent
// hears a continuous stream, not a gap.
//
// The frames are digital silence (zeros), not noise at the CN level: the
// agent is a speech pipeline whose voice-activity detection and recognition
// work best on true silence, and the OnAudio and agent protocols carry no
// level. The level byte is read over, not kept.
type comfortNoise struct {
	silent      bool          // a CN interval is under way
	nextSilence time.Duration // when the next silence frame is due
}

// startSilence begins a CN interval at the CN packet's arrival; a partial
// frame of audio before it is completed with silence and delivered.
func (r *receiver) startSilence(at time.Duration, onAudio func([]int16)) {
	r.flushPartial(onAudio)
	if !r.silent {
		r.silent, r.nextSilence = true, at
	}
}

// fillSilence delivers the silence frames due by now. Like the pacer, it
// catches up at most maxCatchUp frames after a late wakeup and skips the
// rest rather than burst them out.
func (r *receiver) fillSilence(now time.Duration, onAudio func([]int16)) {
	if !r.silent || onAudio == nil {
		return
	}
	for n := 0; r.nextSilence <= now; n++ {
		if n == maxCatchUp {
			r.nextSilence = now + frameDuration
			return
		}
		frame := r.frameLen() // at the rate of the audio before the silence
		clear(r.pcm[:frame])
		onAudio(r.pcm[:frame])
		r.nextSilence += frameDuration
	}
}

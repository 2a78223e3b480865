package media

import (
	"slices"
	"sync"
	"time"
)

// The media engine runs every started Session: worker goroutines, each
// servicing up to workerSessions sessions once per 20 ms frame. A service
// reads whatever RTP arrived on the session's socket since the last one
// (one recvmmsg, without blocking), plays out the jitter buffer, sends the
// frame that is due, and every rtcpPollFrames frames looks at RTCP. So a
// call costs no goroutine, timer or wake-up of its own: its cost is its
// packets' system calls and their processing, and a worker's wake-up is
// shared by its sessions. Workers exist only while they have sessions
// (none outlives the last call).
type engine struct {
	mu      sync.Mutex
	workers []*worker
}

const (
	// rtcpPollFrames is how often, in frames, a session's RTCP socket is
	// read (RTCP comes every few seconds and nothing waits for it).
	rtcpPollFrames = 10
	// workerSessions bounds a worker's sessions, so a frame of its work
	// is short (about half a millisecond): a thread that stalls, preempted
	// by the kernel or by the hypervisor (CPU steal), holds back only
	// those sessions, while the other threads run the other workers. One
	// worker per CPU was measured to make a stall of one vCPU late
	// packets for half the calls (docs/benchmarks.md, Capacity).
	workerSessions = 32
)

var mediaEngine engine

type worker struct {
	e       *engine
	n       int        // sessions it runs or will adopt (e.mu)
	running bool       // its goroutine is running (e.mu)
	adding  []*Session // started, not yet adopted (e.mu)
	rx      rxBatch    // its goroutine's receive buffers
}

// start hands s to the fullest worker that has room (so calls pack into
// few workers), starting one when none has.
func (e *engine) start(s *Session) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var w *worker
	for _, o := range e.workers {
		if o.n < workerSessions && (w == nil || o.n > w.n) {
			w = o
		}
	}
	if w == nil {
		w = &worker{e: e}
		e.workers = append(e.workers, w)
	}
	w.n++
	w.adding = append(w.adding, s)
	if !w.running {
		w.running = true
		go w.run()
	}
}

func (w *worker) run() {
	tick := time.NewTicker(frameDuration)
	defer tick.Stop()
	var sessions []*Session
	for {
		if !w.adopt(&sessions) {
			return
		}
		wall := time.Now()
		kept := sessions[:0]
		for _, s := range sessions {
			if s.service(wall, &w.rx) {
				kept = append(kept, s)
			} else {
				w.retire(s)
			}
		}
		clear(sessions[len(kept):])
		sessions = kept
		<-tick.C
	}
}

// adopt takes the sessions started since the last frame; with none left
// at all the worker stops (false).
func (w *worker) adopt(sessions *[]*Session) bool {
	w.e.mu.Lock()
	defer w.e.mu.Unlock()
	*sessions = append(*sessions, w.adding...)
	clear(w.adding)
	w.adding = w.adding[:0]
	if len(*sessions) == 0 {
		w.running = false
		w.e.workers = slices.DeleteFunc(w.e.workers, func(o *worker) bool { return o == w })
		return false
	}
	return true
}

// retire ends a session that stopped: its last RTCP (with BYE), its final
// counts, then Done.
func (w *worker) retire(s *Session) {
	w.e.mu.Lock()
	w.n--
	w.e.mu.Unlock()
	s.sendRTCP(time.Now(), true)
	s.finish()
	s.doneOnce.Do(func() { close(s.done) })
}

// service is one frame of a running session, at wall; false once it has
// stopped (Close, the RTP timeout, its sockets closed underneath).
func (s *Session) service(wall time.Time, rx *rxBatch) bool {
	if s.stopping() {
		return false
	}
	now := wall.Sub(s.epoch)
	if !s.send.paced {
		// Frame boundaries half a frame away from this worker's ticks, so
		// a tick a little early or late still finds exactly one frame due.
		s.send.paced = true
		s.send.paceFrom = now - frameDuration/2
	}
	if !s.receive(wall, now, rx) {
		return false
	}
	s.tick(now)
	s.pace(now)
	s.rtcpFrame(wall, now, rx)
	return !s.stopping()
}

// receive handles every RTP packet waiting on the socket.
func (s *Session) receive(wall time.Time, now time.Duration, rx *rxBatch) bool {
	for {
		n, err := s.conn.read(rx)
		if err != nil {
			s.log.Warn("rtp socket failed under a running session", "err", err)
			s.shutdown(nil)
			return false
		}
		for i := range n {
			s.handleRTP(rx.data(i), rx.pkts[i].src, arrival(rx.pkts[i].at, wall, now))
		}
		if n < rxBatchLen {
			return true
		}
	}
}

// arrival is when a packet the kernel stamped at (Unix ns; 0: no stamp)
// arrived, on the session's clock that reads now at wall.
func arrival(at int64, wall time.Time, now time.Duration) time.Duration {
	if at == 0 {
		return now
	}
	age := time.Duration(wall.UnixNano() - at)
	if age < 0 || age > time.Second {
		return now // a clock step: trust the read time
	}
	return now - age
}

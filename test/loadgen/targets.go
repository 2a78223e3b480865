package main

import (
	"context"
	"fmt"
	"time"
)

// handoffTarget calls SIP transfers of a running handoff; its loopback
// agent echoes the caller's audio, so RTP flows both ways.
type handoffTarget struct {
	api  *apiClient
	sip  string   // handoff's SIP host:port
	ids  []string // one SIP transfer per call
	c    *caller
	ip   string
	late time.Duration
}

func (h *handoffTarget) name() string { return "handoff" }

func (h *handoffTarget) setup(ctx context.Context, i int, ssrc uint32) (*call, error) {
	l, err := newLeg(h.ip, ssrc, h.late)
	if err != nil {
		return nil, err
	}
	go l.receive()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	dlg, dst, err := h.c.call(cctx, "sip:"+h.ids[i]+"@"+h.sip, h.ip, l.port())
	if err != nil {
		l.conn.Close()
		return nil, err
	}
	l.remote.Store(dst)
	return &call{caller: l, hangup: func() {
		bctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = dlg.Bye(bctx)
		l.conn.Close()
	}}, nil
}

// Handoff's own RTP counters.
const (
	seriesIn   = `handoff_rtp_packets_total{direction="in"}`
	seriesOut  = `handoff_rtp_packets_total{direction="out"}`
	seriesLate = `handoff_rtp_dropped_packets_total{reason="late"}`
)

func (h *handoffTarget) counts() (selfCount, bool) {
	m, err := h.api.metrics(seriesIn, seriesOut, seriesLate)
	if err != nil {
		return selfCount{}, true
	}
	return selfCount{in: int64(m[seriesIn]), late: int64(m[seriesLate]), out: int64(m[seriesOut])}, true
}

func (h *handoffTarget) close() { h.c.close() }

// rtpengineTarget relays each call through rtpengine (ng offer/answer);
// the generator is both ends, each sending its own stream.
type rtpengineTarget struct {
	ng   *ngClient
	run  string // Call-ID prefix
	ip   string
	late time.Duration
}

func (e *rtpengineTarget) name() string { return "rtpengine" }

func (e *rtpengineTarget) setup(_ context.Context, i int, ssrc uint32) (*call, error) {
	a, err := newLeg(e.ip, ssrc, e.late)
	if err != nil {
		return nil, err
	}
	b, err := newLeg(e.ip, ssrc|0x80000000, e.late)
	if err != nil {
		a.conn.Close()
		return nil, err
	}
	go a.receive()
	go b.receive()
	id := fmt.Sprintf("%s-%d", e.run, i)
	if err := e.ng.relay(id, e.ip, a, b); err != nil {
		a.conn.Close()
		b.conn.Close()
		return nil, err
	}
	return &call{caller: a, far: b, hangup: func() {
		_ = e.ng.remove(id)
		a.conn.Close()
		b.conn.Close()
	}}, nil
}

func (e *rtpengineTarget) counts() (selfCount, bool) { return selfCount{}, false }

func (e *rtpengineTarget) close() { e.ng.close() }

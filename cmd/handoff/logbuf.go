package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// logBuffer batches log lines into fewer writes. A call logs a few info
// lines, and unbuffered each is a write(2) of its own: at hundreds of
// calls a second that was measurable (docs/benchmarks.md, Capacity).
// Lines go out within logFlushEvery, when the buffer fills, at once after
// a warning or an error (flushingHandler), and at exit (Close).
type logBuffer struct {
	mu    sync.Mutex
	w     io.Writer
	buf   []byte
	timer *time.Timer // the pending flush; nil when the buffer is empty
}

const (
	logFlushEvery = 50 * time.Millisecond
	logBufferMax  = 64 << 10
)

func newLogBuffer(w io.Writer) *logBuffer { return &logBuffer{w: w} }

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	switch {
	case len(b.buf) >= logBufferMax:
		b.flushLocked()
	case b.timer == nil:
		b.timer = time.AfterFunc(logFlushEvery, b.Flush)
	}
	return len(p), nil
}

// Flush writes out what is buffered.
func (b *logBuffer) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
}

func (b *logBuffer) flushLocked() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if len(b.buf) > 0 {
		_, _ = b.w.Write(b.buf)
		b.buf = b.buf[:0]
	}
}

// Close flushes and leaves no timer behind; later writes still work.
func (b *logBuffer) Close() error {
	b.Flush()
	return nil
}

// flushingHandler flushes the buffer after every warning or error, so
// lines that matter are never held back.
type flushingHandler struct {
	slog.Handler
	b *logBuffer
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.b.Flush()
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(attrs), h.b}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.b}
}

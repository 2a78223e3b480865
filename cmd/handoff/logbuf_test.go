package main

import (
	"strings"
	"testing"
	"time"

	"github.com/handoff/handoff/internal/testenv"
)

// Info lines go out in a batch shortly after; a warning goes out at once
// with what was buffered before it, in order; Close leaves nothing behind.
func TestLogBufferFlushes(t *testing.T) {
	var out testenv.Buffer
	b := newLogBuffer(&out)
	log, _ := newLogger(LogConfig{Level: "info"}, b)
	log.Info("first")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), `"msg":"first"`) {
		if time.Now().After(deadline) {
			t.Fatal("an info line was never written")
		}
		time.Sleep(10 * time.Millisecond)
	}
	log.Info("second")
	log.Warn("third")
	got := out.String()
	if i, j := strings.Index(got, `"msg":"second"`), strings.Index(got, `"msg":"third"`); i < 0 || j < i {
		t.Fatalf("after a warning the buffer holds back lines: %q", got)
	}
	log.Info("fourth")
	if err := b.Close(); err != nil || !strings.Contains(out.String(), `"msg":"fourth"`) || b.timer != nil {
		t.Fatalf("close left lines or a timer: %v %q", err, out.String())
	}
}

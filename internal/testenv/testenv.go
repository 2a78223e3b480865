// Package testenv serves tests that run Handoff's commands as subprocesses:
// it builds a command once per test binary (with the race detector when the
// tests have it, so subprocess traffic hunts races too), finds free
// loopback ports and third-party tools (Tool), starts from a clean
// environment and waits for readiness (CleanEnv, WaitReady), and reads SIPp
// statistics. It also holds the helpers every package's tests share:
// Eventually and Poll, MetricValue, MetricSeries, Value and Scrape to read
// Prometheus metrics, Buffer, Tail, Latencies for benchmarks, and the tone
// measures (Tone, Goertzel, RMS).
package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildLimit bounds one go build (a race build of cmd/handoff on a loaded
// 2-core machine takes tens of seconds).
const buildLimit = 5 * time.Minute

var (
	mu    sync.Mutex
	dir   string
	built = map[string]result{}
)

type result struct {
	bin string
	err error
}

// Build builds the command package pkg (an import path) once per test
// binary and returns the executable's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	r, ok := built[pkg]
	if !ok {
		r = build(pkg)
		built[pkg] = r
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.bin
}

func build(pkg string) result {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return result{err: fmt.Errorf("the go tool is not on PATH: %w", err)}
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "handoff-testbin-"); err != nil {
			return result{err: err}
		}
	}
	bin := filepath.Join(dir, path.Base(pkg))
	args := []string{"build", "-o", bin}
	if Race {
		args = append(args, "-race")
	}
	args = append(args, pkg)
	ctx, cancel := context.WithTimeout(context.Background(), buildLimit)
	defer cancel()
	if out, err := exec.CommandContext(ctx, goTool, args...).CombinedOutput(); err != nil {
		return result{err: fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)}
	}
	return result{bin: bin}
}

// Cleanup removes the built executables; call it from TestMain after m.Run.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
		dir, built = "", map[string]result{}
	}
}

// FreePort returns a loopback port that is free for TCP, and for UDP too
// when both is set (SIP listens on one port number for both).
func FreePort(t testing.TB, both bool) int {
	t.Helper()
	return FreePortExcept(t, both)
}

// FreePortExcept is FreePort, but never one of taken: ports picked one
// after the other are released before the next pick, and the kernel may
// hand the same one out twice.
func FreePortExcept(t testing.TB, both bool, taken ...int) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if slices.Contains(taken, port) {
			l.Close()
			continue
		}
		if !both {
			l.Close()
			return port
		}
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free loopback port for both TCP and UDP")
	return 0
}

// FreeUDPPort returns a free loopback UDP port.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// CleanEnv is the test's environment without HANDOFF_ variables, so the
// configuration file and flags alone configure a Handoff subprocess.
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HANDOFF_") {
			env = append(env, kv)
		}
	}
	return env
}

// WaitReady polls url (a process's /readyz) with c every 20 ms until it
// answers 200. It fails when exited closes first (the process ended) or
// after limit, with the last answer or error.
func WaitReady(c *http.Client, url string, exited <-chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		select {
		case <-exited:
			return fmt.Errorf("exited during start-up (last: %v)", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v (last: %v)", limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Tail is the last n lines of s (a subprocess's output or log), for a
// failing test to show.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

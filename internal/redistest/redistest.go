// Package redistest starts a throw-away redis-server for tests.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/handoff/handoff/internal/testenv"
)

// Require skips tb when the named programs are not installed, or fails it
// when the environment variable CI is set (CI must run everything).
func Require(tb testing.TB, programs ...string) {
	tb.Helper()
	var missing []string
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return
	}
	testenv.Missing(tb, fmt.Sprint(missing), "apt-get install -y redis-server kamailio sip-tester", nil)
}

// FreePort returns a TCP (and, usually, UDP) port free on 127.0.0.1 right now.
func FreePort(tb testing.TB) int {
	tb.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		u.Close()
		return port
	}
	tb.Fatal("no free port pair on 127.0.0.1")
	return 0
}

// Server is a running redis-server.
type Server struct {
	Addr   string // 127.0.0.1:port
	proc   *os.Process
	exited chan struct{}
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Kill stops the server at once (SIGKILL).
func (s *Server) Kill() {
	_ = s.proc.Kill()
	<-s.exited
}

// Start runs redis-server on a free loopback port with no persistence, in a
// temporary directory, and stops it when tb ends; extra arguments are added
// to the command line (e.g. "--appendonly", "yes"). It skips (or, with CI
// set, fails) tb when redis-server is not installed.
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	Require(tb, "redis-server")
	dir := tb.TempDir()
	var lastErr error
	for range 3 {
		port := FreePort(tb)
		s, err := start(dir, port, extra...)
		if err == nil {
			tb.Cleanup(s.Kill)
			return s
		}
		lastErr = err
	}
	tb.Fatalf("redis-server did not start: %v", lastErr)
	return nil
}

// Restart starts a new server on the same address (after Kill).
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	p, _ := strconv.Atoi(port)
	n, err := start(tb.TempDir(), p)
	if err != nil {
		tb.Fatal(err)
	}
	s.proc, s.exited = n.proc, n.exited
}

func start(dir string, port int, extra ...string) (*Server, error) {
	log, err := os.Create(filepath.Join(dir, fmt.Sprintf("redis-%d.log", port)))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	args := append([]string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--dir", dir,
		"--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning"}, extra...)
	cmd := exec.Command("redis-server", args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), proc: cmd.Process, exited: exited}
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if ping(s.Addr) {
			return s, nil
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(log.Name())
			return nil, fmt.Errorf("redis-server on port %d exited: %s", port, b)
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-exited
			return nil, fmt.Errorf("redis-server on port %d did not answer PING", port)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}

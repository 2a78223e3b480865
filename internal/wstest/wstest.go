// Package wstest serves the WebSocket agents of tests: a loopback HTTP
// server that hands every WebSocket connection to the test's handler and,
// when the test ends, stops the handlers and waits for them (goleak
// checks that nothing outlives a test).
package wstest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
)

// Serve starts the server and returns its ws:// URL, without a path (any
// path reaches handle). handle runs once per connection, with a context
// cancelled when the test ends and the upgrade request; the connection is
// closed when it returns.
func Serve(tb testing.TB, handle func(ctx context.Context, c *websocket.Conn, r *http.Request)) string {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		handle(ctx, c, r)
	}))
	// The server's Close does not wait for hijacked connections: cancel
	// ends the handlers' reads, and wg waits for them to return.
	tb.Cleanup(func() {
		cancel()
		srv.Close()
		wg.Wait()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

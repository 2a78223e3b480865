package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ngClient speaks rtpengine's ng control protocol: "<cookie> <bencoded
// dictionary>" over UDP, the answer echoing the cookie.
type ngClient struct {
	conn    *net.UDPConn
	next    atomic.Int64
	mu      sync.Mutex
	waiting map[string]chan map[string]any
}

func newNG(addr string) (*ngClient, error) {
	dst, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialUDP("udp", nil, dst)
	if err != nil {
		return nil, err
	}
	n := &ngClient{conn: conn, waiting: map[string]chan map[string]any{}}
	go n.read()
	return n, nil
}

func (n *ngClient) read() {
	buf := make([]byte, 65536)
	for {
		k, err := n.conn.Read(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		cookie, body, ok := bytes.Cut(buf[:k], []byte(" "))
		if err != nil || !ok {
			continue
		}
		v, _, err := bdecode(body)
		d, isDict := v.(map[string]any)
		n.mu.Lock()
		ch := n.waiting[string(cookie)]
		delete(n.waiting, string(cookie))
		n.mu.Unlock()
		if ch != nil && err == nil && isDict {
			ch <- d
		}
	}
}

// do sends one command and waits for its answer (retrying twice: UDP).
func (n *ngClient) do(cmd map[string]any) (map[string]any, error) {
	cookie := strconv.FormatInt(n.next.Add(1), 10)
	ch := make(chan map[string]any, 1)
	n.mu.Lock()
	n.waiting[cookie] = ch
	n.mu.Unlock()
	msg := append([]byte(cookie+" "), bencode(cmd)...)
	for range 3 {
		if _, err := n.conn.Write(msg); err != nil {
			return nil, err
		}
		select {
		case d := <-ch:
			if d["result"] != "ok" {
				return nil, fmt.Errorf("rtpengine %v: %v %v", cmd["command"], d["result"], d["error-reason"])
			}
			return d, nil
		case <-time.After(2 * time.Second):
		}
	}
	return nil, fmt.Errorf("rtpengine %v: no answer", cmd["command"])
}

func (n *ngClient) close() { n.conn.Close() }

// bencode encodes strings, ints, lists and dictionaries (keys sorted).
func bencode(v any) []byte {
	var b bytes.Buffer
	var enc func(v any)
	enc = func(v any) {
		switch x := v.(type) {
		case string:
			fmt.Fprintf(&b, "%d:%s", len(x), x)
		case int:
			fmt.Fprintf(&b, "i%de", x)
		case []any:
			b.WriteByte('l')
			for _, e := range x {
				enc(e)
			}
			b.WriteByte('e')
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			b.WriteByte('d')
			for _, k := range keys {
				enc(k)
				enc(x[k])
			}
			b.WriteByte('e')
		}
	}
	enc(v)
	return b.Bytes()
}

// bdecode decodes one value and returns the rest of the input.
func bdecode(b []byte) (any, []byte, error) {
	if len(b) == 0 {
		return nil, nil, errors.New("bencode: short")
	}
	switch c := b[0]; {
	case c == 'i':
		end := bytes.IndexByte(b, 'e')
		if end < 0 {
			return nil, nil, errors.New("bencode: bad int")
		}
		n, err := strconv.Atoi(string(b[1:end]))
		return n, b[end+1:], err
	case c == 'l' || c == 'd':
		return bdecodeContainer(b)
	case c >= '0' && c <= '9':
		colon := bytes.IndexByte(b, ':')
		n, err := strconv.Atoi(string(b[:max(colon, 0)]))
		if colon < 0 || err != nil || len(b) < colon+1+n {
			return nil, nil, errors.New("bencode: bad string")
		}
		return string(b[colon+1 : colon+1+n]), b[colon+1+n:], nil
	}
	return nil, nil, fmt.Errorf("bencode: unexpected %q", b[0])
}

// bdecodeContainer decodes a list or a dictionary.
func bdecodeContainer(b []byte) (any, []byte, error) {
	isDict, rest := b[0] == 'd', b[1:]
	var items []any
	for len(rest) > 0 && rest[0] != 'e' {
		v, r, err := bdecode(rest)
		if err != nil {
			return nil, nil, err
		}
		items, rest = append(items, v), r
	}
	if len(rest) == 0 {
		return nil, nil, errors.New("bencode: unterminated")
	}
	if !isDict {
		return items, rest[1:], nil
	}
	d := map[string]any{}
	for i := 0; i+1 < len(items); i += 2 {
		if k, ok := items[i].(string); ok {
			d[k] = items[i+1]
		}
	}
	return d, rest[1:], nil
}

// relay sets up one call through rtpengine between legs a and b: offer with
// a's SDP, answer with b's, and points each leg at the port rtpengine gave
// the other side.
func (n *ngClient) relay(callID, ip string, a, b *leg) error {
	off, err := n.do(map[string]any{"command": "offer", "call-id": callID, "from-tag": "a",
		"sdp": string(pcmuSDP(ip, a.port()))})
	if err != nil {
		return err
	}
	toB, err := sdpAudio(fmt.Sprint(off["sdp"]))
	if err != nil {
		return err
	}
	ans, err := n.do(map[string]any{"command": "answer", "call-id": callID, "from-tag": "a", "to-tag": "b",
		"sdp": string(pcmuSDP(ip, b.port()))})
	if err != nil {
		return err
	}
	toA, err := sdpAudio(fmt.Sprint(ans["sdp"]))
	if err != nil {
		return err
	}
	a.remote.Store(toA) // a sends to the port rtpengine answered a with
	b.remote.Store(toB)
	return nil
}

func (n *ngClient) remove(callID string) error {
	_, err := n.do(map[string]any{"command": "delete", "call-id": callID, "from-tag": "a"})
	return err
}

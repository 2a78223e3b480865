package transfer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
)

// recordCache keeps decoded transfers next to the bytes they were decoded
// from, so reading a record that has not changed since it was last read
// or written costs a comparison and a Clone instead of a JSON decode (a
// call reads its transfer three times: correlation, and in each of its
// two updates). It is keyed by content, so it is right whatever a
// transaction does: bytes that differ are decoded, and equal bytes decode
// to the same transfer whether or not the write that produced them
// committed. What it holds is always a decode of its bytes (a written
// transfer is decoded back, not kept as written: JSON drops empty maps and
// monotonic clock readings), so a reader cannot tell a hit from a miss.
// Ended transfers leave it.
type recordCache struct {
	mu   sync.Mutex
	byID map[string]cachedRecord
}

type cachedRecord struct {
	raw []byte
	t   *Transfer // never handed out: callers get clones
}

// recordCacheSize bounds the cache: the transfers being called, not
// every one waiting for its call.
const recordCacheSize = 4096

func newRecordCache() *recordCache { return &recordCache{byID: map[string]cachedRecord{}} }

// decode is the transfer id stored as raw (valid only during its
// transaction), from the cache when raw is what it holds.
func (c *recordCache) decode(id string, raw []byte) (*Transfer, error) {
	c.mu.Lock()
	e, ok := c.byID[id]
	c.mu.Unlock()
	if ok && bytes.Equal(e.raw, raw) {
		return e.t.Clone(), nil
	}
	t, err := decodeRecord(id, raw)
	if err != nil {
		return nil, err
	}
	c.keep(t.Clone(), raw)
	return t, nil
}

func decodeRecord(id string, raw []byte) (*Transfer, error) {
	var t Transfer
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("decode transfer %q: %w", id, err)
	}
	return &t, nil
}

// put records that id is now stored as raw.
func (c *recordCache) put(id string, status Status, raw []byte) {
	if status == StatusCompleted || status == StatusExpired {
		c.mu.Lock()
		delete(c.byID, id)
		c.mu.Unlock()
		return
	}
	if t, err := decodeRecord(id, raw); err == nil {
		c.keep(t, raw)
	}
}

// keep caches t, the decode of raw (copied).
func (c *recordCache) keep(t *Transfer, raw []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byID[t.ID]; !ok && len(c.byID) >= recordCacheSize {
		for id := range c.byID { // an arbitrary one
			delete(c.byID, id)
			break
		}
	}
	c.byID[t.ID] = cachedRecord{raw: bytes.Clone(raw), t: t}
}

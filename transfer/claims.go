package transfer

import (
	"context"
	"sync"
	"time"
)

// localClaims holds the claims of a store that serves a single node (one
// that is not a NodeStore: the embedded store, which one process owns).
// A claim only keeps a second INVITE off a transfer while the first is
// being set up on this node, and dies with the process either way, so it
// needs no durable write: the answer records the claim's node and the
// INVITE's Inbound in the one write that makes the transfer ONGOING. That
// takes a store write (an fsync) off every call and out of the INVITE→200
// path. Readers through the Service see a local claim as if it were
// stored (Claim and Inbound on an ACTIVE transfer). While the store fails
// writes, claims are written again (Service.wrote), so a node whose disk
// fails refuses new INVITEs with 503 rather than answer and drop them.
type localClaims struct {
	mu   sync.Mutex
	byID map[string]localClaim
}

type localClaim struct {
	claim   Claim
	inbound *Inbound // the service's own copy
}

func newLocalClaims() *localClaims { return &localClaims{byID: map[string]localClaim{}} }

// take claims id for callID at now, unless another call holds a live
// claim. t is the stored transfer, which take overlays with the claim.
func (l *localClaims) take(t *Transfer, callID, node string, in *Inbound, now, expires time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.overlayLocked(t)
	if err := claimCheck(t, callID, now); err != nil {
		return err
	}
	c := localClaim{claim: Claim{CallID: callID, Node: node, ExpiresAt: expires}, inbound: in.Clone()}
	l.byID[t.ID] = c
	t.Claim, t.Inbound = &c.claim, in.Clone()
	return nil
}

// drop removes callID's claim on id and reports whether it held one.
func (l *localClaims) drop(id, callID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c, ok := l.byID[id]; ok && c.claim.CallID == callID {
		delete(l.byID, id)
		return true
	}
	return false
}

// answer moves callID's claim onto t, about to become ONGOING in a store
// update, and reports whether callID held one here (if not, its claim may
// be a stored one: see Service.wrote).
func (l *localClaims) answer(t *Transfer, callID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.byID[t.ID]
	if !ok || c.claim.CallID != callID {
		return false
	}
	claim := c.claim
	t.Claim, t.Inbound = &claim, c.inbound.Clone()
	return true
}

// overlay shows the local claim on a transfer read from the store.
func (l *localClaims) overlay(t *Transfer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.overlayLocked(t)
}

func (l *localClaims) overlayLocked(t *Transfer) {
	if c, ok := l.byID[t.ID]; ok && t.Status == StatusActive {
		claim := c.claim
		t.Claim, t.Inbound = &claim, c.inbound.Clone()
	}
}

// live reports whether id has a claim that has not lapsed at now, held by
// a call other than callID ("": by any call).
func (l *localClaims) live(id, callID string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.byID[id]
	return ok && c.claim.CallID != callID && now.Before(c.claim.ExpiresAt)
}

// prune forgets the claims that lapsed by now (their call failed without
// unclaiming, or rang past the claim TTL).
func (l *localClaims) prune(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, c := range l.byID {
		if !now.Before(c.claim.ExpiresAt) {
			delete(l.byID, id)
		}
	}
}

// claimLocal is ClaimWith for a single-node store: a read, no write.
func (s *Service) claimLocal(ctx context.Context, id, callID, node string, in *Inbound) (*Transfer, error) {
	t, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	if err := s.local.take(t, callID, node, in, now, now.Add(s.cfg.ClaimTTL)); err != nil {
		return nil, err
	}
	return t, nil
}

// overlaid shows the local claims, if any, on a transfer read from the
// store.
func (s *Service) overlaid(t *Transfer, err error) (*Transfer, error) {
	if err == nil && s.local != nil {
		s.local.overlay(t)
	}
	return t, err
}

// claimCheck says why callID cannot claim t at now (ErrClaimed, ErrNotActive),
// or nil when it can.
func claimCheck(t *Transfer, callID string, now time.Time) error {
	switch t.StatusAt(now) {
	case StatusActive:
	case StatusOngoing:
		return ErrClaimed
	default:
		return ErrNotActive
	}
	if t.ClaimedAt(now, callID) {
		return ErrClaimed
	}
	return nil
}

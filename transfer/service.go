package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Defaults for ServiceConfig fields left zero.
const (
	DefaultTTL      = 10 * time.Minute
	DefaultClaimTTL = 45 * time.Second
)

// ServiceConfig tunes the life-cycle.
type ServiceConfig struct {
	// TTL is how long an ACTIVE transfer (and its number lease) waits for its call.
	TTL time.Duration
	// ClaimTTL bounds how long a ringing call holds a transfer before the
	// claim lapses (a node that dies mid-setup must not block it forever).
	ClaimTTL time.Duration
	// Retention is how long a transfer is kept after it ended (COMPLETED
	// or EXPIRED) before the sweeper deletes it; 0 keeps it forever.
	Retention time.Duration
	// Clock returns now; time.Now when nil.
	Clock  func() time.Time
	Logger *slog.Logger
}

// Service applies the life-cycle rules on top of a Store. Both the API and
// the SIP side go through it, so every status change is decided here.
type Service struct {
	store  Store
	cfg    ServiceConfig
	log    *slog.Logger
	events *serviceMetrics
	local  *localClaims // claims kept in memory: nil for a shared store (claims.go)
	// writesFailing: the store's last write failed for a reason of its
	// own (not a rule), so claims are written again until one succeeds.
	writesFailing atomic.Bool
}

// NewService wraps store with the life-cycle rules.
func NewService(store Store, cfg ServiceConfig) *Service {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.ClaimTTL <= 0 {
		cfg.ClaimTTL = DefaultClaimTTL
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Service{store: store, cfg: cfg, log: cfg.Logger, events: newServiceMetrics()}
	if _, shared := store.(NodeStore); !shared {
		s.local = newLocalClaims()
	}
	return s
}

// Now is the service's clock, for rendering StatusAt.
func (s *Service) Now() time.Time { return s.cfg.Clock().UTC() }

// Store gives access to the underlying store (for wiring and metrics).
func (s *Service) Store() Store { return s.store }

// CreateRequest is a validated create call.
type CreateRequest struct {
	ID                     string        `json:"id"`
	ExternalConversationID string        `json:"externalConversationId"`
	Type                   Type          `json:"type"`
	Country                string        `json:"country,omitempty"`
	SIP                    *SIPReturn    `json:"sip,omitempty"`
	InputContext           *InputContext `json:"inputContext,omitempty"`
	// HeadersMode: the SIP side creates the transfer from an INVITE's
	// headers, not the API (see Transfer.HeadersMode).
	HeadersMode bool `json:"headersMode,omitempty"`
}

func (r *CreateRequest) hash() string {
	// encoding/json sorts map keys, so equal requests hash equally.
	b, _ := json.Marshal(r)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Create registers a transfer for owner. Replaying the same request returns
// the stored transfer with replayed=true, so an IVR may retry safely; reusing
// the id with another body (or by another owner) is ErrExists.
func (s *Service) Create(ctx context.Context, owner string, req CreateRequest) (t *Transfer, replayed bool, err error) {
	now := s.Now()
	t = &Transfer{
		ID:                     req.ID,
		Owner:                  owner,
		ExternalConversationID: req.ExternalConversationID,
		Type:                   req.Type,
		Status:                 StatusActive,
		SIP:                    req.SIP,
		InputContext:           req.InputContext,
		CreatedAt:              now,
		ExpiresAt:              now.Add(s.cfg.TTL),
		RequestHash:            req.hash(),
		HeadersMode:            req.HeadersMode,
	}
	if req.Type == TypePhoneNumber {
		t.PhoneNumber = &PhoneNumber{Country: req.Country}
	}
	stored, err := s.store.Create(ctx, t, now)
	s.wrote(err)
	if errors.Is(err, ErrExists) {
		if stored != nil && stored.Owner == owner && stored.RequestHash == t.RequestHash {
			return stored, true, nil
		}
		return nil, false, ErrExists
	}
	if err != nil {
		return nil, false, err
	}
	s.events.created.WithLabelValues(string(req.Type)).Inc()
	s.log.Info("transfer created", "transfer_id", stored.ID, "type", stored.Type, "owner", owner)
	return stored, false, nil
}

// Get returns owner's transfer; another owner's reads as not found.
func (s *Service) Get(ctx context.Context, owner, id string) (*Transfer, error) {
	t, err := s.overlaid(s.store.Get(ctx, id))
	if err != nil {
		return nil, err
	}
	if t.Owner != owner {
		return nil, ErrNotFound
	}
	return t, nil
}

// Lookup returns a transfer by id whoever owns it (for SIP correlation).
func (s *Service) Lookup(ctx context.Context, id string) (*Transfer, error) {
	return s.overlaid(s.store.Get(ctx, id))
}

// FindByNumber returns the ACTIVE transfer that leases number.
func (s *Service) FindByNumber(ctx context.Context, number string) (*Transfer, error) {
	return s.overlaid(s.store.FindByNumber(ctx, number, s.Now()))
}

// Claim reserves an ACTIVE transfer for the call callID while it is answered.
// It fails with ErrNotActive when the transfer has ended or expired and with
// ErrClaimed when another call is already on it.
func (s *Service) Claim(ctx context.Context, id, callID, node string) (*Transfer, error) {
	return s.ClaimWith(ctx, id, callID, node, nil)
}

// ClaimWith is Claim that also records, in the same step, what the claiming
// INVITE said about its call (in, when not nil). Unclaim removes it again.
// With a single-node store the claim is kept in memory (claims.go).
func (s *Service) ClaimWith(ctx context.Context, id, callID, node string, in *Inbound) (*Transfer, error) {
	if s.local != nil && !s.writesFailing.Load() {
		return s.claimLocal(ctx, id, callID, node, in)
	}
	now := s.Now()
	return s.wroteT(s.store.Update(ctx, id, now, func(t *Transfer) error {
		if err := claimCheck(t, callID, now); err != nil {
			return err
		}
		if s.local != nil && s.local.live(id, callID, now) {
			return ErrClaimed
		}
		t.Claim = &Claim{CallID: callID, Node: node, ExpiresAt: now.Add(s.cfg.ClaimTTL)}
		if in != nil {
			t.Inbound = in.Clone()
		}
		return nil
	}))
}

// Unclaim drops callID's claim (the call was cancelled or failed before
// answer), and what its INVITE recorded, leaving the transfer ACTIVE for a
// retry.
func (s *Service) Unclaim(ctx context.Context, id, callID string) error {
	if s.local != nil && s.local.drop(id, callID) {
		return nil
	}
	_, err := s.store.Update(ctx, id, s.Now(), func(t *Transfer) error {
		if t.Claim == nil || t.Claim.CallID != callID {
			return errNoChange
		}
		t.Claim = nil
		t.Inbound = nil
		return nil
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	return err
}

// errNoChange aborts an Update that has nothing to write.
var errNoChange = errors.New("no change")

// Answer marks the transfer ONGOING once callID's call is confirmed (ACK).
// A PHONE_NUMBER lease ends here and its number goes into quarantine.
func (s *Service) Answer(ctx context.Context, id, callID string) (*Transfer, error) {
	now := s.Now()
	t, err := s.store.Update(ctx, id, now, func(t *Transfer) error {
		if s.local == nil || !s.local.answer(t, callID) {
			if t.Claim == nil || t.Claim.CallID != callID {
				return fmt.Errorf("%w: claim lost", ErrClaimed)
			}
		}
		return t.Transition(StatusOngoing, now)
	})
	s.wrote(err)
	if err == nil {
		if s.local != nil {
			s.local.drop(id, callID)
		}
		s.log.Info("transfer ongoing", "transfer_id", id, "call_id", callID)
	}
	return t, err
}

// Complete ends an ONGOING transfer with the agent's outcome (which may be
// nil when the agent never finished) and the reason the call ended. extra,
// when not nil, records more about the end (such as the return's result) in
// the same step.
func (s *Service) Complete(ctx context.Context, id string, reason EndReason, out *OutputContext, extra func(*Transfer)) (*Transfer, error) {
	now := s.Now()
	t, err := s.store.Update(ctx, id, now, func(t *Transfer) error {
		if err := t.Transition(StatusCompleted, now); err != nil {
			return err
		}
		t.EndReason = reason
		if out != nil {
			t.OutputContext = out
		}
		if extra != nil {
			extra(t)
		}
		return nil
	})
	s.wrote(err)
	if err == nil {
		s.events.completed.WithLabelValues(string(reason)).Inc()
		s.log.Info("transfer completed", "transfer_id", id, "end_reason", reason)
	}
	return t, err
}

// wrote notes the outcome of a store write: a failure of the store itself
// (not a rule such as ErrClaimed) makes claims durable writes again, so a
// store that cannot write refuses new calls before they are answered;
// the first write that succeeds ends that.
func (s *Service) wrote(err error) {
	switch {
	case err == nil:
		s.writesFailing.Store(false)
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrExists), errors.Is(err, ErrNoNumber),
		errors.Is(err, ErrUnknownCountry), errors.Is(err, ErrIllegalTransition), errors.Is(err, ErrClaimed),
		errors.Is(err, ErrNotActive), errors.Is(err, errNoChange):
	default:
		s.writesFailing.Store(true)
	}
}

func (s *Service) wroteT(t *Transfer, err error) (*Transfer, error) {
	s.wrote(err)
	return t, err
}

// Amend changes a transfer after its status has settled (for example to
// record a return call that ends after COMPLETED). It never changes status.
func (s *Service) Amend(ctx context.Context, id string, fn func(*Transfer)) (*Transfer, error) {
	return s.store.Update(ctx, id, s.Now(), func(t *Transfer) error {
		before := t.Status
		fn(t)
		t.Status = before
		return nil
	})
}

// SweepExpired stores EXPIRED on every ACTIVE transfer past its expiry and
// returns how many it changed. Safe to run on several nodes at once.
func (s *Service) SweepExpired(ctx context.Context) (int, error) {
	now := s.Now()
	if s.local != nil {
		s.local.prune(now)
	}
	ids, err := s.store.Expired(ctx, now, 500)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		_, err := s.store.Update(ctx, id, now, func(t *Transfer) error {
			if t.ClaimedAt(now, "") || (s.local != nil && s.local.live(id, "", now)) {
				// A call is being answered right now; let it finish or lapse.
				return errNoChange
			}
			return t.Transition(StatusExpired, now)
		})
		switch {
		case err == nil:
			n++
			s.log.Info("transfer expired", "transfer_id", id)
		case errors.Is(err, errNoChange), errors.Is(err, ErrIllegalTransition), errors.Is(err, ErrNotFound):
		default:
			return n, err
		}
	}
	return n, nil
}

// PurgeEnded deletes the transfers that ended more than the retention ago
// (a batch per call) and returns how many; no-op without a retention.
func (s *Service) PurgeEnded(ctx context.Context) (int, error) {
	if s.cfg.Retention <= 0 {
		return 0, nil
	}
	n, err := s.store.Purge(ctx, s.Now().Add(-s.cfg.Retention), 500)
	if n > 0 {
		s.log.Info("ended transfers purged", "count", n, "retention", s.cfg.Retention.String())
	}
	return n, err
}

// RunSweeper sweeps expired transfers, and purges those past the
// retention, every interval until ctx ends.
func (s *Service) RunSweeper(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := s.SweepExpired(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("expiry sweep failed", "err", err)
			}
			if _, err := s.PurgeEnded(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("purge of ended transfers failed", "err", err)
			}
		}
	}
}

// SetNumbers configures the number pools (entries as ExpandPools takes them).
func (s *Service) SetNumbers(ctx context.Context, pools map[string][]string) error {
	expanded, err := ExpandPools(pools)
	if err != nil {
		return err
	}
	return s.store.SetNumbers(ctx, expanded, s.Now())
}

// Ready reports whether the store answers.
func (s *Service) Ready(ctx context.Context) error { return s.store.Ping(ctx) }

package transfer

import (
	"context"
	"errors"
	"time"
)

// ongoingLister lists a node's ONGOING transfers; every store has it.
type ongoingLister interface {
	OngoingOn(ctx context.Context, node string, limit int) ([]string, error)
}

// endOngoing ends what node still owed the transfers of ids (see
// endOnNode), one compare-and-set each (a transfer that has moved on
// meanwhile is left alone), and returns how many it ended.
func (s *Service) endOngoing(ctx context.Context, ids []string, node string, reason EndReason, msg string) (int, error) {
	n := 0
	for _, id := range ids {
		now := s.Now()
		returning := false
		_, err := s.store.Update(ctx, id, now, func(t *Transfer) error {
			returning = t.Returning()
			return endOnNode(t, node, reason, now)
		})
		switch {
		case err == nil:
			n++
			if !returning {
				s.events.completed.WithLabelValues(string(reason)).Inc()
			}
			s.log.Warn(msg, "transfer_id", id, "node", node, "end_reason", reason, "return_interrupted", returning)
		case errors.Is(err, errNoChange), errors.Is(err, ErrIllegalTransition), errors.Is(err, ErrNotFound):
		default:
			return n, err
		}
	}
	return n, nil
}

// endOnNode ends what node owed t when it stopped: an ONGOING call is
// completed with reason; a return that never recorded its result (the
// node stopped while handing the call back) is recorded as failed, with
// reason "interrupted: <reason>".
func endOnNode(t *Transfer, node string, reason EndReason, now time.Time) error {
	if ongoingNode(t) != node {
		return errNoChange
	}
	if t.Returning() {
		method := ReturnBye
		if t.SIP != nil && t.SIP.ReturnTransferType != "" {
			method = t.SIP.ReturnTransferType
		}
		t.Return = &ReturnResult{Method: method, Result: ReturnFailed, Reason: "interrupted: " + string(reason),
			StartedAt: t.CompletedAt, EndedAt: now}
		return nil
	}
	if err := t.Transition(StatusCompleted, now); err != nil {
		return err
	}
	t.EndReason = reason
	return nil
}

// EndOrphans completes, with end reason node_restarted, the transfers still
// ONGOING on node, and records as failed the returns node had not finished:
// called once at start-up, before node takes calls, so every one of them
// belongs to a process that died (SIGKILL, crash, power).
func (s *Service) EndOrphans(ctx context.Context, node string) (int, error) {
	lister, ok := s.store.(ongoingLister)
	if !ok || node == "" {
		return 0, nil
	}
	n := 0
	for {
		ids, err := lister.OngoingOn(ctx, node, lostBatch)
		if err != nil {
			return n, err
		}
		ended, err := s.endOngoing(ctx, ids, node, EndNodeRestarted, "transfer completed: its call died with the previous process")
		if err != nil {
			return n + ended, err
		}
		n += ended
		if len(ids) < lostBatch || ended == 0 {
			return n, nil
		}
	}
}

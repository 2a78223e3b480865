package transfer

import (
	"context"
	"errors"
)

// ongoingLister lists a node's ONGOING transfers; every store has it.
type ongoingLister interface {
	OngoingOn(ctx context.Context, node string, limit int) ([]string, error)
}

// endOngoing completes with reason the transfers of ids that are still
// ONGOING on node, one compare-and-set each (a transfer that has moved on
// meanwhile is left alone), and returns how many it ended.
func (s *Service) endOngoing(ctx context.Context, ids []string, node string, reason EndReason, msg string) (int, error) {
	n := 0
	for _, id := range ids {
		now := s.Now()
		_, err := s.store.Update(ctx, id, now, func(t *Transfer) error {
			if t.Status != StatusOngoing || t.Node != node {
				return errNoChange
			}
			if err := t.Transition(StatusCompleted, now); err != nil {
				return err
			}
			t.EndReason = reason
			return nil
		})
		switch {
		case err == nil:
			n++
			s.events.completed.WithLabelValues(string(reason)).Inc()
			s.log.Warn(msg, "transfer_id", id, "node", node, "end_reason", reason)
		case errors.Is(err, errNoChange), errors.Is(err, ErrIllegalTransition), errors.Is(err, ErrNotFound):
		default:
			return n, err
		}
	}
	return n, nil
}

// EndOrphans completes, with end reason node_restarted, the transfers still
// ONGOING on node: called once at start-up, before node takes calls, so
// every one of them belongs to a process that died (SIGKILL, crash, power).
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

package transfer

import (
	"reflect"
	"testing"
	"time"
)

// The update rules both stores apply, decided in one place.
func TestPlanUpdate(t *testing.T) {
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	q := time.Minute
	active := &Transfer{ID: "t1", Type: TypePhoneNumber, Status: StatusActive, ExpiresAt: now.Add(time.Minute),
		PhoneNumber: &PhoneNumber{Country: "US", TransferNumber: "+19995550100"}}

	ongoing := active.Clone()
	ongoing.Status, ongoing.Node = StatusOngoing, "node-a"
	p := planUpdate(active, ongoing, now, q)
	if p.CountFrom != StatusActive || p.CountTo != StatusOngoing {
		t.Errorf("answer moves the counts %q -> %q", p.CountFrom, p.CountTo)
	}
	if !p.ExpiryFrom.Equal(active.ExpiresAt) || !p.ExpiryTo.IsZero() {
		t.Errorf("answer leaves the expiry index: %v -> %v", p.ExpiryFrom, p.ExpiryTo)
	}
	want := numberLease{Country: "US", Holder: "t1", Number: "+19995550100", HeldUntil: now, FreeAt: now.Add(q)}
	if p.Release == nil || *p.Release != want {
		t.Errorf("answer releases %+v, want %+v", p.Release, want)
	}
	if p.OngoingFrom != "" || p.OngoingTo != "node-a" || !p.Ended.IsZero() {
		t.Errorf("answer: ongoing %q -> %q, ended %v", p.OngoingFrom, p.OngoingTo, p.Ended)
	}

	// Expired before the sweeper ran: the lease ended at the expiry.
	late := now.Add(5 * time.Minute)
	expired := active.Clone()
	expired.Status = StatusExpired
	p = planUpdate(active, expired, late, q)
	if p.Release == nil || !p.Release.HeldUntil.Equal(active.ExpiresAt) || !p.Release.FreeAt.Equal(active.ExpiresAt.Add(q)) {
		t.Errorf("late expiry releases %+v, want from the expiry", p.Release)
	}
	if !p.Ended.Equal(active.ExpiresAt) {
		t.Errorf("expiry enters the ended index at %v", p.Ended)
	}

	done := ongoing.Clone()
	done.Status, done.CompletedAt = StatusCompleted, late
	p = planUpdate(ongoing, done, late, q)
	if p.Release != nil || !p.ExpiryFrom.IsZero() || !p.ExpiryTo.IsZero() {
		t.Errorf("completion touches the lease or expiry: %+v", p)
	}
	if p.OngoingFrom != "node-a" || p.OngoingTo != "" || !p.Ended.Equal(late) {
		t.Errorf("completion: ongoing %q -> %q, ended %v", p.OngoingFrom, p.OngoingTo, p.Ended)
	}

	// An amend after the end changes no index entry.
	amended := done.Clone()
	amended.EndReason = "x"
	if p := planUpdate(done, amended, late, q); !reflect.DeepEqual(p, plan{Record: amended}) {
		t.Errorf("amend plans %+v", p)
	}
}

func TestPlanCreate(t *testing.T) {
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	tr := &Transfer{ID: "t1", Type: TypePhoneNumber, Status: StatusActive, ExpiresAt: now.Add(time.Minute),
		PhoneNumber: &PhoneNumber{Country: "US"}}
	p := planCreate(tr, now, time.Minute)
	want := numberLease{Country: "US", Holder: "t1", Now: now, HeldUntil: tr.ExpiresAt, FreeAt: tr.ExpiresAt.Add(time.Minute)}
	if p.Lease == nil || *p.Lease != want {
		t.Errorf("lease %+v, want %+v", p.Lease, want)
	}
	if p.CountFrom != "" || p.CountTo != StatusActive || !p.ExpiryTo.Equal(tr.ExpiresAt) || p.Release != nil {
		t.Errorf("create plans %+v", p)
	}
	sip := &Transfer{ID: "t2", Type: TypeSIP, Status: StatusActive, ExpiresAt: now.Add(time.Minute)}
	if p := planCreate(sip, now, time.Minute); p.Lease != nil {
		t.Errorf("a SIP transfer leases %+v", p.Lease)
	}
}

func TestReleaseShortensOnly(t *testing.T) {
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	r := numberLease{Holder: "t1", HeldUntil: now}
	if !r.Shortens("t1", now.Add(time.Second)) {
		t.Error("a release does not end a longer lease of its own number")
	}
	if r.Shortens("t2", now.Add(time.Second)) {
		t.Error("a release ends another transfer's lease")
	}
	if r.Shortens("t1", now) || r.Shortens("t1", now.Add(-time.Second)) {
		t.Error("a release extends a lease")
	}
}

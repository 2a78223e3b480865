package transfer

import (
	"context"
	"time"
)

// Store keeps transfers and number leases. Every method is atomic on its own,
// so a shared implementation (Redis) can serve several nodes: two creates
// never lease one number and two updates never both win a transfer.
type Store interface {
	// Create stores t, which must be new. For a PHONE_NUMBER transfer it
	// leases the least recently used free number of t.PhoneNumber.Country,
	// held until t.ExpiresAt, and fills in TransferNumber. If the id is
	// taken it returns the stored record with ErrExists.
	Create(ctx context.Context, t *Transfer, now time.Time) (*Transfer, error)
	// Get returns the transfer with this id, or ErrNotFound.
	Get(ctx context.Context, id string) (*Transfer, error)
	// FindByNumber returns the transfer that holds number at now, or
	// ErrNotFound when the number is free, in quarantine or unknown.
	FindByNumber(ctx context.Context, number string, now time.Time) (*Transfer, error)
	// Update applies fn to the stored transfer and saves the result as one
	// compare-and-set step. If fn returns an error nothing is saved. When the
	// transfer leaves ACTIVE its number's lease ends (at now, or at its
	// expiry if that came first) and the number rests in quarantine.
	Update(ctx context.Context, id string, now time.Time, fn func(*Transfer) error) (*Transfer, error)
	// SetNumbers makes the pool exactly these numbers per country. Numbers
	// that disappear while leased keep serving their transfer until it ends.
	SetNumbers(ctx context.Context, pools map[string][]string, now time.Time) error
	// PoolStats counts the numbers of each country by state at now.
	PoolStats(ctx context.Context, now time.Time) (map[string]PoolStats, error)
	// Expired lists up to limit ACTIVE transfers whose expiry is before now.
	Expired(ctx context.Context, now time.Time, limit int) ([]string, error)
	// Purge deletes up to limit transfers that ended (stored COMPLETED, or
	// EXPIRED) before endedBefore, oldest first, and returns how many.
	Purge(ctx context.Context, endedBefore time.Time, limit int) (int, error)
	// Counts returns the number of stored transfers by stored status.
	Counts(ctx context.Context) (map[Status]int, error)
	// Ping reports whether the store can serve requests.
	Ping(ctx context.Context) error
	Close() error
}

// PoolStats counts one country's numbers.
type PoolStats struct {
	Free        int
	Leased      int
	Quarantined int
}

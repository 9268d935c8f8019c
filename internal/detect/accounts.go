package detect

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// Accounts remembers when the guard first saw each account log in
// successfully at a site (the guard's Accounts), in the store, so the
// age of an account survives restarts and is shared by every guard on
// the store. Lookups are cached: a known account never goes back to the
// database, and an unknown one is asked again at most once a minute.
type Accounts struct {
	db  *store.DB
	log *slog.Logger

	mu    sync.Mutex
	known map[[2]string]time.Time
	miss  map[[2]string]time.Time // unknown accounts, until when that answer holds
}

// Bounds of the caches: past them lookups go to the database.
const (
	maxKnownAccounts = 1 << 20
	maxMissAccounts  = 1 << 16
	missTTL          = time.Minute
)

// OpenAccounts returns the account book of db (migrated with Migrations).
func OpenAccounts(db *store.DB, logger *slog.Logger) *Accounts {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Accounts{db: db, log: logger, known: map[[2]string]time.Time{}, miss: map[[2]string]time.Time{}}
}

// FirstSeen returns when account first logged in successfully at site.
func (a *Accounts) FirstSeen(site, account string) (time.Time, bool) {
	k := [2]string{site, account}
	now := time.Now()
	a.mu.Lock()
	if t, ok := a.known[k]; ok {
		a.mu.Unlock()
		return t, true
	}
	if until, ok := a.miss[k]; ok && now.Before(until) {
		a.mu.Unlock()
		return time.Time{}, false
	}
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var us int64
	err := a.db.QueryRowContext(ctx, "SELECT first_seen FROM detect_accounts WHERE site = $1 AND account = $2", site, account).Scan(&us)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		a.remember(k, time.Time{}, now.Add(missTTL))
		return time.Time{}, false
	case err != nil:
		// Unknown is the strict answer: the account gets the new-account
		// limit until the database answers again.
		a.log.Warn("detect: look up account", "site", site, "err", err)
		return time.Time{}, false
	}
	t := store.FromMicros(us)
	a.remember(k, t, time.Time{})
	return t, true
}

func (a *Accounts) remember(k [2]string, seen, missUntil time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !seen.IsZero() {
		delete(a.miss, k)
		if len(a.known) < maxKnownAccounts {
			a.known[k] = seen
		}
		return
	}
	if len(a.miss) >= maxMissAccounts {
		clear(a.miss)
	}
	a.miss[k] = missUntil
}

// Seen records a successful login; only the first one per account and
// site is kept.
func (a *Accounts) Seen(site, account string, t time.Time) {
	k := [2]string{site, account}
	a.mu.Lock()
	_, ok := a.known[k]
	a.mu.Unlock()
	if ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	us := store.Micros(t)
	if _, err := a.db.ExecContext(ctx, "INSERT INTO detect_accounts (site, account, first_seen) VALUES ($1, $2, $3) ON CONFLICT (site, account) DO NOTHING", site, account, us); err != nil {
		a.log.Warn("detect: record account", "site", site, "err", err)
		return
	}
	// Another process may have recorded it first: read back the first.
	if err := a.db.QueryRowContext(ctx, "SELECT first_seen FROM detect_accounts WHERE site = $1 AND account = $2", site, account).Scan(&us); err == nil {
		a.remember(k, store.FromMicros(us), time.Time{})
	}
}

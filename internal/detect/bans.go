// Package detect decides who is kept out: ban decisions, stored and
// published as events, that the guard enforces per connection and request
// and the firewall enforces in the kernel.
//
// A ban is a network (an address is a /32 or /128 network), a reason, who
// decided it (a scenario or a person), when it started and when it
// expires. The table keeps every decision, lifted or expired, so repeat
// offenders can be recognised and the history audited; the active ones
// live in memory too, in a set the guard consults on every connection
// without touching the database. Several processes may share the store
// (the `bulwark ban` command beside a running `bulwark up`): Refresh
// reloads the active set, and the running server calls it every few
// seconds.
package detect

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/netindex"
	"github.com/bulwarkhq/bulwark/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the schema of the ban decisions.
var Migrations = store.Migrations{Name: "detect", FS: migrationFS, Dir: "migrations"}

// Limits of a decision's fields.
const (
	MaxReasonBytes = 512
	MaxDuration    = 10 * 365 * 24 * time.Hour
)

// ErrNotFound is returned when no active ban matches.
var ErrNotFound = errors.New("no active ban")

// Ban is one decision.
type Ban struct {
	ID int64 `json:"id"`
	// Net is the banned network.
	Net netip.Prefix `json:"net"`
	// Reason says why, for the person reading a list of bans.
	Reason string `json:"reason"`
	// Origin is who decided: "scenario:NAME" or "user:NAME".
	Origin string `json:"origin"`
	// Scenario names the detection scenario, when one decided.
	Scenario string    `json:"scenario,omitempty"`
	Start    time.Time `json:"start"`
	Expires  time.Time `json:"expires"`
	// Removed is when the ban was lifted early (zero: it was not), and
	// RemovedBy who lifted it.
	Removed   time.Time `json:"removed,omitzero"`
	RemovedBy string    `json:"removed_by,omitempty"`
}

// Active reports whether the ban is in force at t.
func (b Ban) Active(t time.Time) bool { return b.Removed.IsZero() && t.Before(b.Expires) }

// Bans stores decisions and keeps the active ones in memory.
type Bans struct {
	db  *store.DB
	bus *events.Bus // may be nil (tests, offline tools without events)
	now func() time.Time

	mu      sync.Mutex // serialises writers and Refresh
	active  atomic.Pointer[activeSet]
	version atomic.Uint64
}

// activeSet is an immutable snapshot of the bans in force, indexed by
// network (internal/netindex) for lookups that cost one map probe per
// distinct prefix length.
type activeSet struct {
	ix   *netindex.Index[Ban]
	list []Ban
}

// Options configure Bans.
type Options struct {
	// Bus receives ban.added and ban.removed events; nil: none.
	Bus *events.Bus
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Open returns the decisions of db (migrated with Migrations), with the
// active ones loaded.
func Open(ctx context.Context, db *store.DB, opt Options) (*Bans, error) {
	b := &Bans{db: db, bus: opt.Bus, now: opt.Now}
	if b.now == nil {
		b.now = time.Now
	}
	b.active.Store(buildActive(nil))
	if err := b.Refresh(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

func buildActive(list []Ban) *activeSet {
	s := &activeSet{ix: netindex.New[Ban](), list: list}
	for _, b := range list {
		// Two decisions on one network: the one lasting longer wins.
		s.ix.Add(b.Net, b, func(old, new Ban) Ban {
			if new.Expires.After(old.Expires) {
				return new
			}
			return old
		})
	}
	return s
}

// Match returns the ban in force on a, the most specific first. It never
// touches the database.
func (b *Bans) Match(a netip.Addr) (Ban, bool) {
	now := b.now()
	_, ban, ok := b.active.Load().ix.Match(a, func(ban Ban) bool { return ban.Active(now) })
	return ban, ok
}

// Active returns the bans in force, as last loaded, in start order.
func (b *Bans) Active() []Ban {
	now := b.now()
	var out []Ban
	for _, ban := range b.active.Load().list {
		if ban.Active(now) {
			out = append(out, ban)
		}
	}
	return out
}

// Version changes whenever the active set may have changed (for the
// firewall's reconciliation).
func (b *Bans) Version() uint64 { return b.version.Load() }

// Refresh reloads the active bans from the store.
func (b *Bans) Refresh(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.refreshLocked(ctx)
}

func (b *Bans) refreshLocked(ctx context.Context) error {
	list, err := b.query(ctx, "WHERE removed = 0 AND expires > $1 ORDER BY started, id", store.Micros(b.now()))
	if err != nil {
		return err
	}
	old := b.active.Load()
	b.active.Store(buildActive(list))
	if !sameBans(old.list, list) {
		b.version.Add(1)
	}
	return nil
}

func sameBans(a, b []Ban) bool {
	return slices.EqualFunc(a, b, func(x, y Ban) bool { return x.ID == y.ID && x.Expires.Equal(y.Expires) })
}

// List returns bans, newest first: the active ones, or with all, every
// decision kept, at most limit (0: no limit).
func (b *Bans) List(ctx context.Context, all bool, limit int) ([]Ban, error) {
	q := "WHERE removed = 0 AND expires > $1 ORDER BY started DESC, id DESC"
	args := []any{store.Micros(b.now())}
	if all {
		q, args = "ORDER BY started DESC, id DESC", nil
	}
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	return b.query(ctx, q, args...)
}

// Offences counts the decisions on net that started after since (lifted
// or expired included): repeat offenders get longer bans.
func (b *Bans) Offences(ctx context.Context, net netip.Prefix, since time.Time) (int, error) {
	var n int
	err := b.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM detect_bans WHERE net = $1 AND started > $2",
		netindex.Canonical(net).String(), store.Micros(since)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count offences of %s: %w", net, err)
	}
	return n, nil
}

func (b *Bans) query(ctx context.Context, where string, args ...any) ([]Ban, error) {
	rows, err := b.db.QueryContext(ctx, "SELECT id, net, reason, origin, scenario, started, expires, removed, removed_by FROM detect_bans "+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read bans: %w", err)
	}
	defer rows.Close()
	var out []Ban
	for rows.Next() {
		var ban Ban
		var net string
		var start, expires, removed int64
		if err := rows.Scan(&ban.ID, &net, &ban.Reason, &ban.Origin, &ban.Scenario, &start, &expires, &removed, &ban.RemovedBy); err != nil {
			return nil, fmt.Errorf("read bans: %w", err)
		}
		p, err := netip.ParsePrefix(net)
		if err != nil {
			return nil, fmt.Errorf("read bans: ban %d: stored network %q: %w", ban.ID, net, err)
		}
		ban.Net = netindex.Canonical(p)
		ban.Start, ban.Expires = store.FromMicros(start), store.FromMicros(expires)
		if removed != 0 {
			ban.Removed = store.FromMicros(removed)
		}
		out = append(out, ban)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read bans: %w", err)
	}
	return out, nil
}

// Add records a ban for d (from now) and publishes ban.added. Origin must
// be "scenario:NAME" or "user:NAME"; reason is required.
func (b *Bans) Add(ctx context.Context, ban Ban, d time.Duration) (Ban, error) {
	if err := validateBan(ban, d); err != nil {
		return Ban{}, err
	}
	ban.Net = netindex.Canonical(ban.Net)
	ban.Start = b.now().UTC().Truncate(time.Microsecond)
	ban.Expires = ban.Start.Add(d)
	ban.Removed, ban.RemovedBy = time.Time{}, ""
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO detect_bans (net, reason, origin, scenario, started, expires, removed, removed_by)
			VALUES ($1, $2, $3, $4, $5, $6, 0, '') RETURNING id`,
			ban.Net.String(), ban.Reason, ban.Origin, ban.Scenario, store.Micros(ban.Start), store.Micros(ban.Expires)).Scan(&ban.ID)
	})
	if err != nil {
		return Ban{}, fmt.Errorf("store ban of %s: %w", ban.Net, err)
	}
	// Stored: the event (and so the audit entry) goes out whatever
	// happens to the reload.
	b.publish(ctx, events.TypeBanAdded, ban, ban.Origin,
		fmt.Sprintf("banned %s until %s: %s", ban.Net, ban.Expires.Format(time.RFC3339), ban.Reason))
	if err := b.refreshLocked(context.WithoutCancel(ctx)); err != nil {
		return ban, err
	}
	return ban, nil
}

func validateBan(ban Ban, d time.Duration) error {
	switch {
	case !ban.Net.IsValid():
		return errors.New("ban: no network given")
	case d <= 0 || d > MaxDuration:
		return fmt.Errorf("ban: duration %s must be positive and at most %s", d, MaxDuration)
	case strings.TrimSpace(ban.Reason) == "":
		return errors.New("ban: a reason is required (it is what the next person reading the list sees)")
	case len(ban.Reason) > MaxReasonBytes:
		return fmt.Errorf("ban: reason is %d bytes, the limit is %d", len(ban.Reason), MaxReasonBytes)
	case !strings.HasPrefix(ban.Origin, "scenario:") && !strings.HasPrefix(ban.Origin, "user:"):
		return fmt.Errorf("ban: origin %q must be scenario:NAME or user:NAME", ban.Origin)
	}
	return nil
}

// Remove lifts the active bans on exactly net (not narrower or wider
// ones) and publishes ban.removed for each. It returns them, or
// ErrNotFound.
func (b *Bans) Remove(ctx context.Context, net netip.Prefix, by string) ([]Ban, error) {
	net = netindex.Canonical(net)
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now().UTC().Truncate(time.Microsecond)
	list, err := b.query(ctx, "WHERE net = $1 AND removed = 0 AND expires > $2", net.String(), store.Micros(now))
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%s: %w", net, ErrNotFound)
	}
	err = b.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, ban := range list {
			if _, err := tx.ExecContext(ctx, "UPDATE detect_bans SET removed = $1, removed_by = $2 WHERE id = $3", store.Micros(now), by, ban.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lift ban of %s: %w", net, err)
	}
	for i := range list {
		list[i].Removed, list[i].RemovedBy = now, by
	}
	for _, ban := range list {
		b.publish(ctx, events.TypeBanRemoved, ban, by, fmt.Sprintf("lifted the ban of %s (%s)", ban.Net, ban.Reason))
	}
	if err := b.refreshLocked(context.WithoutCancel(ctx)); err != nil {
		return list, err
	}
	return list, nil
}

func (b *Bans) publish(ctx context.Context, t events.Type, ban Ban, actor, msg string) {
	if b.bus == nil {
		return
	}
	_, _ = b.bus.Publish(context.WithoutCancel(ctx), events.Event{
		Type: t, Severity: events.SeverityNotice, Module: events.ModuleGuard,
		Actor: actor, Resource: "ban/" + ban.Net.String(), Message: msg,
		Data: map[string]any{"id": ban.ID, "net": ban.Net.String(), "reason": ban.Reason, "origin": ban.Origin,
			"scenario": ban.Scenario, "start": ban.Start, "expires": ban.Expires},
	})
}

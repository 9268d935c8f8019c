// Package rules keeps the guard's runtime rules: allow and deny list
// entries and bandwidth (shaping) rules added through the API or the CLI
// while the guard runs, beside the static ones of the config.
//
// Rules are stored (migrations/), published as events (and so audited),
// and held in memory as an immutable Snapshot that the guard swaps in
// without a restart: at once in the process that made the change
// (Subscribe), within the refresh interval in any other process sharing
// the store (Refresh, which `bulwark up` calls every few seconds, as it
// does for bans).
//
// A list entry is a network (an address is a /32 or /128), a reason, who
// added it and an optional expiry. A shaping rule is named; it caps the
// bandwidth of the responses it matches, all of them together in one
// bucket: the responses to a client, when it names networks or accounts
// (a client is a CIDR list or an account), or a whole site's responses,
// when it names neither. docs/guard.md gives the precedence.
package rules

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/netindex"
	"github.com/bulwarkhq/bulwark/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the schema of the runtime rules.
var Migrations = store.Migrations{Name: "guard", FS: migrationFS, Dir: "migrations"}

// The lists.
const (
	Allow = "allow"
	Deny  = "deny"
)

// Limits of a rule's fields.
const (
	MaxReasonBytes  = 512
	MaxDuration     = 10 * 365 * 24 * time.Hour
	MaxNets         = 1000 // networks in one shaping rule
	MaxAccounts     = 1000 // accounts in one shaping rule
	MaxAccountBytes = 256
	MinBandwidth    = 1 << 10 // 1 KiB/s: below that a response times out rather than flows
	MaxBandwidth    = 1 << 40 // 1 TiB/s
	MaxEntries      = 100_000 // entries in both lists together
	MaxShapes       = 10_000  // shaping rules
	maxNameBytes    = 64
)

// ErrNotFound is returned when no entry or rule matches.
var ErrNotFound = errors.New("not found")

// ErrFull is returned when the lists or the shaping rules are at their
// limit (MaxEntries, MaxShapes).
var ErrFull = errors.New("at the limit")

// InvalidError refuses a rule for one of its fields.
type InvalidError struct{ Field, Problem string }

func (e *InvalidError) Error() string { return e.Field + ": " + e.Problem }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Entry is one allow or deny list entry.
type Entry struct {
	ID int64 `json:"id"`
	// List is "allow" or "deny".
	List string `json:"list"`
	// Net is the network listed.
	Net netip.Prefix `json:"net"`
	// Reason says why, for the next person reading the list.
	Reason string `json:"reason"`
	// Origin is who added it: "user:NAME".
	Origin  string    `json:"origin"`
	Created time.Time `json:"created"`
	// Expires is when the entry stops applying; zero: until removed.
	Expires time.Time `json:"expires,omitzero"`
}

// Active reports whether the entry applies at t.
func (e Entry) Active(t time.Time) bool { return e.Expires.IsZero() || t.Before(e.Expires) }

// Shape is a named bandwidth rule.
type Shape struct {
	// Name identifies the rule (lower-case letters, digits, '.', '_', '-').
	Name string `json:"name"`
	// Sites limits the rule to these sites (their first host name, as in
	// the config); empty: every site.
	Sites []string `json:"sites,omitempty"`
	// Nets and Accounts say whose responses the rule caps; with neither,
	// it caps the whole of its sites' responses.
	Nets     []netip.Prefix `json:"nets,omitempty"`
	Accounts []string       `json:"accounts,omitempty"`
	// Bandwidth is the cap in bytes per second.
	Bandwidth int64  `json:"bandwidth"`
	Reason    string `json:"reason,omitempty"`
	// Origin is who last set it: "user:NAME".
	Origin  string    `json:"origin"`
	Updated time.Time `json:"updated"`
}

// SiteWide reports whether the rule caps whole sites rather than clients.
func (s Shape) SiteWide() bool { return len(s.Nets) == 0 && len(s.Accounts) == 0 }

// Snapshot is the rules in force at one moment. It is immutable.
type Snapshot struct {
	// Allow and Deny are the active entries' networks, sorted.
	Allow, Deny []netip.Prefix
	// Shapes are the shaping rules, by name.
	Shapes []Shape
	// Version grows with every change.
	Version uint64
}

// Rules stores the runtime rules and keeps the active ones in memory.
type Rules struct {
	db  *store.DB
	bus *events.Bus
	now func() time.Time

	mu      sync.Mutex // serialises writers and Refresh
	snap    atomic.Pointer[Snapshot]
	entries []Entry // as last loaded, for change detection
	subs    map[int]func(*Snapshot)
	nextSub int
}

// Options configure Rules.
type Options struct {
	// Bus receives list.* and shape.* events; nil: none.
	Bus *events.Bus
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Open returns the rules of db (migrated with Migrations), loaded.
func Open(ctx context.Context, db *store.DB, opt Options) (*Rules, error) {
	r := &Rules{db: db, bus: opt.Bus, now: opt.Now, subs: map[int]func(*Snapshot){}}
	if r.now == nil {
		r.now = time.Now
	}
	r.snap.Store(&Snapshot{})
	if err := r.Refresh(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Snapshot returns the rules in force, as last loaded.
func (r *Rules) Snapshot() *Snapshot { return r.snap.Load() }

// Subscribe calls f with every new snapshot, after the change that made
// it, until the returned cancel is called. f must not call back into r's
// writers.
func (r *Rules) Subscribe(f func(*Snapshot)) (cancel func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.nextSub
	r.nextSub++
	r.subs[id] = f
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.subs, id)
	}
}

// Refresh reloads the rules from the store, dropping entries that have
// expired, and tells subscribers when anything changed.
func (r *Rules) Refresh(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refreshLocked(ctx)
}

func (r *Rules) refreshLocked(ctx context.Context) error {
	now := r.now()
	entries, err := r.queryEntries(ctx, "WHERE expires = 0 OR expires > $1 ORDER BY id", store.Micros(now))
	if err != nil {
		return err
	}
	shapes, err := r.queryShapes(ctx)
	if err != nil {
		return err
	}
	old := r.snap.Load()
	if slices.EqualFunc(entries, r.entries, sameEntry) && slices.EqualFunc(shapes, old.Shapes, sameShape) && r.entries != nil {
		return nil
	}
	r.entries = entries // queryEntries never returns nil, so a first load always lands
	s := &Snapshot{Shapes: shapes, Version: old.Version + 1}
	for _, e := range entries {
		if e.List == Allow {
			s.Allow = append(s.Allow, e.Net)
		} else {
			s.Deny = append(s.Deny, e.Net)
		}
	}
	r.snap.Store(s)
	for _, f := range r.subs {
		f(s)
	}
	return nil
}

func sameEntry(a, b Entry) bool { return a.ID == b.ID && a.Expires.Equal(b.Expires) }

// sameShape compares every field: two edits can share a timestamp.
func sameShape(a, b Shape) bool {
	return a.Name == b.Name && a.Bandwidth == b.Bandwidth && a.Reason == b.Reason && a.Origin == b.Origin &&
		a.Updated.Equal(b.Updated) && slices.Equal(a.Sites, b.Sites) && slices.Equal(a.Nets, b.Nets) && slices.Equal(a.Accounts, b.Accounts)
}

// Entries returns a list's entries (list "" : both), oldest first; with
// expired, those past their expiry too (until they are removed).
func (r *Rules) Entries(ctx context.Context, list string, expired bool) ([]Entry, error) {
	where, args := []string{}, []any{}
	if list != "" {
		if err := checkList(list); err != nil {
			return nil, err
		}
		args = append(args, list)
		where = append(where, fmt.Sprintf("list = $%d", len(args)))
	}
	if !expired {
		args = append(args, store.Micros(r.now()))
		where = append(where, fmt.Sprintf("(expires = 0 OR expires > $%d)", len(args)))
	}
	q := "ORDER BY id"
	if len(where) > 0 {
		q = "WHERE " + strings.Join(where, " AND ") + " " + q
	}
	return r.queryEntries(ctx, q, args...)
}

func (r *Rules) queryEntries(ctx context.Context, where string, args ...any) ([]Entry, error) {
	rows, err := r.db.QueryContext(ctx, "SELECT id, list, net, reason, origin, created, expires FROM guard_lists "+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read guard lists: %w", err)
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		var e Entry
		var net string
		var created, expires int64
		if err := rows.Scan(&e.ID, &e.List, &net, &e.Reason, &e.Origin, &created, &expires); err != nil {
			return nil, fmt.Errorf("read guard lists: %w", err)
		}
		p, err := netip.ParsePrefix(net)
		if err != nil {
			return nil, fmt.Errorf("read guard lists: entry %d: stored network %q: %w", e.ID, net, err)
		}
		e.Net = p
		e.Created = store.FromMicros(created)
		if expires != 0 {
			e.Expires = store.FromMicros(expires)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read guard lists: %w", err)
	}
	return out, nil
}

func checkList(list string) error {
	if list != Allow && list != Deny {
		return invalid("list", "%q: must be %q or %q", list, Allow, Deny)
	}
	return nil
}

// AddEntry adds a network to a list for d (0: until removed), replacing
// an entry for the same network on that list, and publishes list.added.
// It returns the stored entry.
func (r *Rules) AddEntry(ctx context.Context, e Entry, d time.Duration) (Entry, error) {
	switch {
	case checkList(e.List) != nil:
		return Entry{}, checkList(e.List)
	case !e.Net.IsValid():
		return Entry{}, invalid("net", "no network given")
	case d < 0 || d > MaxDuration:
		return Entry{}, invalid("duration", "%s must be 0 (until removed) or positive and at most %s", d, MaxDuration)
	}
	if err := checkReason(e.Reason, true); err != nil {
		return Entry{}, err
	}
	if err := checkOrigin(e.Origin); err != nil {
		return Entry{}, err
	}
	e.Net = netindex.Canonical(e.Net)
	e.Created = r.now().UTC().Truncate(time.Microsecond)
	e.Expires = time.Time{}
	var expires int64
	if d > 0 {
		e.Expires = e.Created.Add(d)
		expires = store.Micros(e.Expires)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM guard_lists WHERE NOT (list = $1 AND net = $2)", e.List, e.Net.String()).Scan(&n); err != nil {
			return err
		}
		if n >= MaxEntries {
			return fmt.Errorf("the lists hold %d entries, the most allowed (remove some first): %w", n, ErrFull)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM guard_lists WHERE list = $1 AND net = $2", e.List, e.Net.String()); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO guard_lists (list, net, reason, origin, created, expires)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			e.List, e.Net.String(), e.Reason, e.Origin, store.Micros(e.Created), expires).Scan(&e.ID)
	})
	if err != nil {
		return Entry{}, fmt.Errorf("store %s list entry %s: %w", e.List, e.Net, err)
	}
	until := "until removed"
	if !e.Expires.IsZero() {
		until = "until " + e.Expires.Format(time.RFC3339)
	}
	r.publish(ctx, events.TypeListAdded, e.Origin, e.List+"/"+e.Net.String(),
		fmt.Sprintf("added %s to the %s list %s: %s", e.Net, e.List, until, e.Reason), entryData(e))
	return e, r.refreshLocked(context.WithoutCancel(ctx))
}

// RemoveEntry removes net (exactly, not narrower or wider networks) from
// a list and publishes list.removed. It returns the removed entry or
// ErrNotFound.
func (r *Rules) RemoveEntry(ctx context.Context, list string, net netip.Prefix, by string) (Entry, error) {
	if err := checkList(list); err != nil {
		return Entry{}, err
	}
	net = netindex.Canonical(net)
	r.mu.Lock()
	defer r.mu.Unlock()
	found, err := r.queryEntries(ctx, "WHERE list = $1 AND net = $2", list, net.String())
	if err != nil {
		return Entry{}, err
	}
	if len(found) == 0 {
		return Entry{}, fmt.Errorf("%s is not on the %s list: %w", net, list, ErrNotFound)
	}
	if _, err := r.db.ExecContext(ctx, "DELETE FROM guard_lists WHERE list = $1 AND net = $2", list, net.String()); err != nil {
		return Entry{}, fmt.Errorf("remove %s from the %s list: %w", net, list, err)
	}
	e := found[0]
	r.publish(ctx, events.TypeListRemoved, by, list+"/"+net.String(),
		fmt.Sprintf("removed %s from the %s list (%s)", net, list, e.Reason), entryData(e))
	return e, r.refreshLocked(context.WithoutCancel(ctx))
}

func entryData(e Entry) map[string]any {
	return map[string]any{"id": e.ID, "list": e.List, "net": e.Net.String(), "reason": e.Reason, "origin": e.Origin, "expires": e.Expires}
}

// Shapes returns the shaping rules, by name, as last loaded.
func (r *Rules) Shapes() []Shape { return slices.Clone(r.snap.Load().Shapes) }

func (r *Rules) queryShapes(ctx context.Context) ([]Shape, error) {
	rows, err := r.db.QueryContext(ctx, "SELECT name, sites, nets, accounts, bandwidth, reason, origin, updated FROM guard_shapes ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("read shaping rules: %w", err)
	}
	defer rows.Close()
	out := []Shape{}
	for rows.Next() {
		var s Shape
		var sites, nets, accounts string
		var updated int64
		if err := rows.Scan(&s.Name, &sites, &nets, &accounts, &s.Bandwidth, &s.Reason, &s.Origin, &updated); err != nil {
			return nil, fmt.Errorf("read shaping rules: %w", err)
		}
		var netStrs []string
		if err := errors.Join(json.Unmarshal([]byte(sites), &s.Sites), json.Unmarshal([]byte(nets), &netStrs),
			json.Unmarshal([]byte(accounts), &s.Accounts)); err != nil {
			return nil, fmt.Errorf("read shaping rule %q: %w", s.Name, err)
		}
		for _, n := range netStrs {
			p, err := netip.ParsePrefix(n)
			if err != nil {
				return nil, fmt.Errorf("read shaping rule %q: stored network %q: %w", s.Name, n, err)
			}
			s.Nets = append(s.Nets, p)
		}
		s.Updated = store.FromMicros(updated)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read shaping rules: %w", err)
	}
	return out, nil
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// CheckShape validates a shaping rule's fields (not Origin and Updated).
// The errors name the field.
func CheckShape(s Shape) error {
	switch {
	case len(s.Name) > maxNameBytes || !namePattern.MatchString(s.Name):
		return invalid("name", "%q: use 1 to %d lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", s.Name, maxNameBytes)
	case s.Bandwidth < MinBandwidth || s.Bandwidth > MaxBandwidth:
		return invalid("bandwidth", "%d bytes/s: must be between %d (1 KiB/s) and %d (1 TiB/s)", s.Bandwidth, MinBandwidth, int64(MaxBandwidth))
	case len(s.Nets) > MaxNets:
		return invalid("nets", "%d networks, at most %d in one rule", len(s.Nets), MaxNets)
	case len(s.Accounts) > MaxAccounts:
		return invalid("accounts", "%d accounts, at most %d in one rule", len(s.Accounts), MaxAccounts)
	}
	for i, p := range s.Nets {
		if !p.IsValid() {
			return invalid(fmt.Sprintf("nets[%d]", i), "not a network")
		}
	}
	for i, a := range s.Accounts {
		if a == "" || len(a) > MaxAccountBytes || !utf8.ValidString(a) || strings.IndexFunc(a, isControl) >= 0 {
			return invalid(fmt.Sprintf("accounts[%d]", i), "%q: must be 1 to %d bytes of text without control characters", a, MaxAccountBytes)
		}
	}
	for i, h := range s.Sites {
		if h == "" || len(h) > 253 || strings.ContainsAny(h, " /\\@?#%") || strings.IndexFunc(h, isControl) >= 0 {
			return invalid(fmt.Sprintf("sites[%d]", i), "%q: not a site host name", h)
		}
	}
	return checkReason(s.Reason, false)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// PutShape creates or replaces the shaping rule of s.Name and publishes
// shape.set. It returns the stored rule and whether it was new.
func (r *Rules) PutShape(ctx context.Context, s Shape) (Shape, bool, error) {
	if err := CheckShape(s); err != nil {
		return Shape{}, false, err
	}
	if err := checkOrigin(s.Origin); err != nil {
		return Shape{}, false, err
	}
	s.Nets, s.Accounts, s.Sites = slices.Clone(s.Nets), slices.Clone(s.Accounts), slices.Clone(s.Sites)
	for i, p := range s.Nets {
		s.Nets[i] = netindex.Canonical(p)
	}
	s.Nets = slices.CompactFunc(slices.SortedFunc(slices.Values(s.Nets), netindex.Compare), func(a, b netip.Prefix) bool { return a == b })
	s.Accounts = slices.Compact(slices.Sorted(slices.Values(s.Accounts)))
	for i, h := range s.Sites {
		s.Sites[i] = strings.ToLower(strings.TrimSuffix(h, "."))
	}
	s.Sites = slices.Compact(slices.Sorted(slices.Values(s.Sites)))
	s.Updated = r.now().UTC().Truncate(time.Microsecond)
	sites, _ := json.Marshal(nonNil(s.Sites))
	nets := make([]string, len(s.Nets))
	for i, p := range s.Nets {
		nets[i] = p.String()
	}
	netsJSON, _ := json.Marshal(nets)
	accounts, _ := json.Marshal(nonNil(s.Accounts))
	r.mu.Lock()
	defer r.mu.Unlock()
	created := false
	err := r.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		var exists bool
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(CASE WHEN name = $1 THEN 1 ELSE 0 END), 0) > 0 FROM guard_shapes", s.Name).Scan(&n, &exists); err != nil {
			return err
		}
		created = !exists
		if created && n >= MaxShapes {
			return fmt.Errorf("there are %d shaping rules, the most allowed (remove some first): %w", n, ErrFull)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO guard_shapes (name, sites, nets, accounts, bandwidth, reason, origin, updated)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (name) DO UPDATE SET sites = excluded.sites, nets = excluded.nets, accounts = excluded.accounts,
				bandwidth = excluded.bandwidth, reason = excluded.reason, origin = excluded.origin, updated = excluded.updated`,
			s.Name, string(sites), string(netsJSON), string(accounts), s.Bandwidth, s.Reason, s.Origin, store.Micros(s.Updated))
		return err
	})
	if err != nil {
		return Shape{}, false, fmt.Errorf("store shaping rule %q: %w", s.Name, err)
	}
	r.publish(ctx, events.TypeShapeSet, s.Origin, "shape/"+s.Name,
		fmt.Sprintf("set shaping rule %s to %d bytes/s for %s", s.Name, s.Bandwidth, describe(s)), shapeData(s))
	return s, created, r.refreshLocked(context.WithoutCancel(ctx))
}

// RemoveShape removes a shaping rule and publishes shape.removed; it
// returns the removed rule or ErrNotFound.
func (r *Rules) RemoveShape(ctx context.Context, name, by string) (Shape, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.IndexFunc(r.snap.Load().Shapes, func(s Shape) bool { return s.Name == name })
	res, err := r.db.ExecContext(ctx, "DELETE FROM guard_shapes WHERE name = $1", name)
	if err != nil {
		return Shape{}, fmt.Errorf("remove shaping rule %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Shape{}, fmt.Errorf("shaping rule %q: %w", name, ErrNotFound)
	}
	var s Shape
	if i >= 0 {
		s = r.snap.Load().Shapes[i]
	} else {
		s = Shape{Name: name}
	}
	r.publish(ctx, events.TypeShapeRemoved, by, "shape/"+name, fmt.Sprintf("removed shaping rule %s", name), shapeData(s))
	return s, r.refreshLocked(context.WithoutCancel(ctx))
}

// describe says whom a rule caps, for messages.
func describe(s Shape) string {
	var who string
	switch {
	case s.SiteWide():
		who = "all clients"
	default:
		var parts []string
		if n := len(s.Nets); n > 0 {
			parts = append(parts, fmt.Sprintf("%d network(s)", n))
		}
		if n := len(s.Accounts); n > 0 {
			parts = append(parts, fmt.Sprintf("%d account(s)", n))
		}
		who = strings.Join(parts, " and ")
	}
	if len(s.Sites) == 0 {
		return who + " of every site"
	}
	return who + " of " + strings.Join(s.Sites, ", ")
}

func shapeData(s Shape) map[string]any {
	return map[string]any{"name": s.Name, "sites": s.Sites, "nets": len(s.Nets), "accounts": len(s.Accounts),
		"bandwidth": s.Bandwidth, "reason": s.Reason, "origin": s.Origin}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func checkReason(reason string, required bool) error {
	switch {
	case required && strings.TrimSpace(reason) == "":
		return invalid("reason", "required (it is what the next person reading the list sees)")
	case len(reason) > MaxReasonBytes:
		return invalid("reason", "%d bytes, the limit is %d", len(reason), MaxReasonBytes)
	}
	return nil
}

func checkOrigin(origin string) error {
	if !strings.HasPrefix(origin, "user:") || len(origin) == len("user:") {
		return invalid("origin", "%q must be user:NAME", origin)
	}
	return nil
}

func (r *Rules) publish(ctx context.Context, t events.Type, actor, resource, msg string, data map[string]any) {
	if r.bus == nil {
		return
	}
	_, _ = r.bus.Publish(context.WithoutCancel(ctx), events.Event{
		Type: t, Severity: events.SeverityNotice, Module: events.ModuleGuard,
		Actor: actor, Resource: resource, Message: msg, Data: data,
	})
}

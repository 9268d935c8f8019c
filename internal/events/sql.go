package events

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// execer is what insert needs from *sql.DB and *sql.Tx alike.
type execer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func insert(ctx context.Context, x execer, e Event, tagsJSON, dataJSON string) (int64, error) {
	var id int64
	err := x.QueryRowContext(ctx, `INSERT INTO events(at, type, severity, module, actor, resource, tags, message, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
		store.Micros(e.Time), string(e.Type), e.Severity.rank(), e.Module, e.Actor, e.Resource,
		tagsJSON, e.Message, dataJSON).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("events: store %s event: %w", e.Type, err)
	}
	return id, nil
}

const selectColumns = `SELECT id, at, type, severity, module, actor, resource, tags, message, data FROM events`

type scanner interface{ Scan(dest ...any) error }

func scanEvent(s scanner) (Event, error) {
	var (
		e                 Event
		at                int64
		typ               string
		rank              int
		tagsJSON, dataStr string
	)
	if err := s.Scan(&e.ID, &at, &typ, &rank, &e.Module, &e.Actor, &e.Resource, &tagsJSON, &e.Message, &dataStr); err != nil {
		return Event{}, err
	}
	e.Time = store.FromMicros(at)
	e.Type = Type(typ)
	sev, ok := severityOfRank(rank)
	if !ok {
		return Event{}, fmt.Errorf("events: event %d has unknown severity rank %d", e.ID, rank)
	}
	e.Severity = sev
	var err error
	if e.Tags, err = decodeTags(tagsJSON); err != nil {
		return Event{}, fmt.Errorf("events: event %d: decode tags: %w", e.ID, err)
	}
	if e.Data, err = decodeData(dataStr); err != nil {
		return Event{}, fmt.Errorf("events: event %d: decode data: %w", e.ID, err)
	}
	return e, nil
}

// Get returns the event with the given ID, or an error matching
// store.ErrNotFound.
func (b *Bus) Get(ctx context.Context, id int64) (Event, error) {
	e, err := scanEvent(b.db.QueryRowContext(ctx, selectColumns+` WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Event{}, fmt.Errorf("events: event %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return Event{}, fmt.Errorf("events: get event %d: %w", id, err)
	}
	return e, nil
}

// Query returns one page of the events f selects, in ID order (ascending,
// or descending with f.Desc). To fetch the next page, set f.AfterID to the
// ID of the last event returned; a page shorter than the limit is the last.
// An invalid filter gives an error matching ErrInvalid.
func (b *Bus) Query(ctx context.Context, f Filter) ([]Event, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	limit := f.Limit
	if limit == 0 {
		limit = DefaultLimit
	}

	// Everything but the tags is exact in SQL. Tags are stored as canonical
	// JSON of a restricted alphabet, so `"key":"value"` appearing in the
	// text finds the pair, but SQLite's LIKE ignores ASCII case: rows are
	// re-checked in Go, and the cursor advances over every row read,
	// matched or not, which keeps AfterID pagination exact.
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if len(f.Types) > 0 {
		var or []string
		for _, t := range f.Types {
			if strings.HasSuffix(string(t), ".") {
				or = append(or, `type LIKE `+arg(store.Like(string(t))+"%")+` ESCAPE '\'`)
			} else {
				or = append(or, `type = `+arg(string(t)))
			}
		}
		where = append(where, "("+strings.Join(or, " OR ")+")")
	}
	if len(f.Modules) > 0 {
		var in []string
		for _, m := range f.Modules {
			in = append(in, arg(m))
		}
		where = append(where, "module IN ("+strings.Join(in, ", ")+")")
	}
	if f.MinSeverity != "" {
		where = append(where, "severity >= "+arg(f.MinSeverity.rank()))
	}
	if !f.Since.IsZero() {
		where = append(where, "at >= "+arg(microsCeil(f.Since)))
	}
	if !f.Until.IsZero() {
		where = append(where, "at < "+arg(microsCeil(f.Until)))
	}
	if f.Resource != "" {
		where = append(where, "resource = "+arg(f.Resource))
	}
	for k, v := range f.Tags {
		pair, err := canonicalJSON(map[string]string{k: v})
		if err != nil {
			return nil, fmt.Errorf("events: encode tag filter: %w", err)
		}
		inner := strings.TrimSuffix(strings.TrimPrefix(string(pair), "{"), "}")
		where = append(where, `tags LIKE `+arg("%"+store.Like(inner)+"%")+` ESCAPE '\'`)
	}
	fixed := len(args)

	cursor := f.AfterID
	var out []Event
	for {
		args = args[:fixed]
		conds := where
		order := "ASC"
		if f.Desc {
			order = "DESC"
			if cursor > 0 {
				conds = append(conds[:len(conds):len(conds)], "id < "+arg(cursor))
			}
		} else {
			conds = append(conds[:len(conds):len(conds)], "id > "+arg(cursor))
		}
		q := selectColumns
		if len(conds) > 0 {
			q += " WHERE " + strings.Join(conds, " AND ")
		}
		q += " ORDER BY id " + order + " LIMIT " + arg(limit)
		n, err := b.queryPage(ctx, q, args, func(e Event) bool {
			cursor = e.ID
			if len(f.Tags) == 0 || f.Match(e) {
				out = append(out, e)
			}
			return len(out) < limit
		})
		if err != nil {
			return nil, err
		}
		if len(out) >= limit || n < limit {
			return out, nil
		}
	}
}

// queryPage runs q and feeds each event to keep until it returns false; it
// returns how many rows were read.
func (b *Bus) queryPage(ctx context.Context, q string, args []any, keep func(Event) bool) (int, error) {
	rows, err := b.db.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("events: query: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return n, fmt.Errorf("events: query: %w", err)
		}
		n++
		if !keep(e) {
			// The page is full; report a full read so the caller stops.
			return n, rows.Close()
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("events: query: %w", err)
	}
	return n, nil
}

// microsCeil rounds t up to whole microseconds, the stored precision, so
// that "at >= ceil(since)" keeps exactly the events not before since.
func microsCeil(t time.Time) int64 {
	us := t.UnixMicro()
	if time.UnixMicro(us).Before(t) {
		us++
	}
	return us
}

// pruneBatch bounds one DELETE so that pruning a large table does not hold
// SQLite's single write lock for long.
var pruneBatch = 5000

// Prune deletes the events that happened before the given time and returns
// how many it deleted. Retention is the caller's policy.
func (b *Bus) Prune(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		res, err := b.db.ExecContext(ctx, `DELETE FROM events WHERE id IN
			(SELECT id FROM events WHERE at < $1 ORDER BY id LIMIT $2)`, store.Micros(before), pruneBatch)
		if err != nil {
			return total, fmt.Errorf("events: prune before %s: %w", before.Format(time.RFC3339), err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("events: prune: %w", err)
		}
		total += n
		if n < int64(pruneBatch) {
			return total, nil
		}
	}
}

package continuity

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the continuity schema (run history), for store.DB.Migrate.
var Migrations = store.Migrations{Name: "continuity", FS: migrationFS, Dir: "migrations"}

// Kind is what a run did.
type Kind string

// The kinds of run.
const (
	KindBackup      Kind = "backup"
	KindRestoreTest Kind = "restore_test"
	KindScrub       Kind = "scrub"
)

// Status is how a run ended.
type Status string

// Run statuses.
const (
	StatusRunning Status = "running"
	StatusOK      Status = "ok"
	StatusFailed  Status = "failed"
)

// Run is one row of the run history.
type Run struct {
	ID       int64     `json:"id"`
	Policy   string    `json:"policy"`
	Kind     Kind      `json:"kind"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	Status   Status    `json:"status"`
	Error    string    `json:"error,omitempty"`
	// Owner is the process that runs (or ran) the job (owner.go), and
	// Heartbeat when it last said it was still running.
	Owner     string          `json:"owner,omitempty"`
	Heartbeat time.Time       `json:"heartbeat,omitzero"`
	Evidence  json.RawMessage `json:"evidence,omitempty"`
}

// History stores runs.
type History struct {
	db    *store.DB
	owner string // recorded with every run this process starts
}

// NewHistory uses db, migrated with Migrations.
func NewHistory(db *store.DB) *History { return &History{db: db, owner: processOwner()} }

// Start records a run beginning at t and returns its id.
func (h *History) Start(ctx context.Context, policy string, kind Kind, t time.Time) (int64, error) {
	var id int64
	err := h.db.QueryRowContext(ctx, `INSERT INTO continuity_runs(policy, kind, started, finished, status, error, evidence, owner, heartbeat)
		VALUES ($1, $2, $3, 0, $4, '', '{}', $5, $3) RETURNING id`, policy, string(kind), store.Micros(t), string(StatusRunning), h.owner).Scan(&id)
	if store.IsUniqueViolation(err) {
		return 0, fmt.Errorf("%s of policy %s: %w (started by another process at the same moment)", kind, policy, ErrRunning)
	}
	if err != nil {
		return 0, fmt.Errorf("continuity: record the start of %s %s: %w", policy, kind, err)
	}
	return id, nil
}

// Heartbeat intervals: the process running a job refreshes its run's
// heartbeat every HeartbeatEvery; a run of another host whose heartbeat is
// older than HeartbeatStale is over (its process is gone).
const (
	HeartbeatEvery = time.Minute
	HeartbeatStale = 5 * time.Minute
)

// Beat refreshes the heartbeat of run id, still running, to t.
func (h *History) Beat(ctx context.Context, id int64, t time.Time) error {
	if _, err := h.db.ExecContext(ctx, `UPDATE continuity_runs SET heartbeat = $1 WHERE id = $2 AND status = $3`, store.Micros(t), id, string(StatusRunning)); err != nil {
		return fmt.Errorf("continuity: heartbeat of run %d: %w", id, err)
	}
	return nil
}

// Finish records the end of run id.
func (h *History) Finish(ctx context.Context, id int64, t time.Time, runErr error, evidence any) error {
	status, msg := StatusOK, ""
	if runErr != nil {
		status, msg = StatusFailed, runErr.Error()
	}
	ev, err := json.Marshal(evidence)
	if err != nil {
		return fmt.Errorf("continuity: encode evidence: %w", err)
	}
	if _, err := h.db.ExecContext(ctx, `UPDATE continuity_runs SET finished = $1, status = $2, error = $3, evidence = $4 WHERE id = $5`,
		store.Micros(t), string(status), msg, string(ev), id); err != nil {
		return fmt.Errorf("continuity: record the end of run %d: %w", id, err)
	}
	return nil
}

// AbandonRunning marks failed the runs still "running" whose process has
// ended (a crash or a kill during the run), and returns how many there
// were. Runs of live processes, this one included, are left alone.
func (h *History) AbandonRunning(ctx context.Context, t time.Time) (int64, error) {
	_, n, err := h.sweep(ctx, t, "", "", false)
	return n, err
}

// Live returns a run of policy and kind in progress in a live process,
// after marking failed those whose process is gone. With self, a run of
// this very process counts as gone: pass it only when this process holds
// the job's in-memory claim, which proves it runs no such job (the row was
// left "running" by a Finish that failed).
func (h *History) Live(ctx context.Context, policy string, kind Kind, t time.Time, self bool) (Run, bool, error) {
	live, _, err := h.sweep(ctx, t, policy, kind, self)
	if err != nil || len(live) == 0 {
		return Run{}, false, err
	}
	return live[0], true, nil
}

// over reports whether run r (status running) has ended without saying
// so: its process on this host is gone, or another host's process has not
// refreshed the heartbeat for HeartbeatStale. self says how to judge a
// run of this very process.
func (h *History) over(r Run, t time.Time, self bool) bool {
	switch {
	case r.Owner == "":
		return true // recorded before owners were
	case r.Owner == h.owner:
		return self
	case sameHost(r.Owner):
		return ownerGone(r.Owner)
	}
	beat := r.Heartbeat
	if beat.IsZero() {
		beat = r.Started
	}
	return t.Sub(beat) > HeartbeatStale
}

// sweep looks at the runs still "running" (of one policy and kind, or all
// when policy is empty): it marks failed those whose process is gone and
// returns the others.
func (h *History) sweep(ctx context.Context, t time.Time, policy string, kind Kind, self bool) (live []Run, abandoned int64, err error) {
	q, args := runColumns+` WHERE status = $1`, []any{string(StatusRunning)}
	if policy != "" {
		q += ` AND policy = $2 AND kind = $3`
		args = append(args, policy, string(kind))
	}
	rows, err := h.db.QueryContext(ctx, q+` ORDER BY started DESC, id DESC`, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("continuity: find running jobs: %w", err)
	}
	var gone []int64
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			rows.Close()
			return nil, 0, fmt.Errorf("continuity: find running jobs: %w", err)
		}
		if h.over(r, t, self) {
			gone = append(gone, r.ID)
		} else {
			live = append(live, r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("continuity: find running jobs: %w", err)
	}
	for _, id := range gone {
		res, err := h.db.ExecContext(ctx, `UPDATE continuity_runs SET finished = $1, status = $2, error = $3 WHERE id = $4 AND status = $5`,
			store.Micros(t), string(StatusFailed), "interrupted: the process stopped during the run", id, string(StatusRunning))
		if err != nil {
			return live, abandoned, fmt.Errorf("continuity: mark run %d interrupted: %w", id, err)
		}
		k, _ := res.RowsAffected()
		abandoned += k
	}
	return live, abandoned, nil
}

const runColumns = `SELECT id, policy, kind, started, finished, status, error, owner, heartbeat, evidence FROM continuity_runs`

func scanRun(s interface{ Scan(...any) error }) (Run, error) {
	var r Run
	var kind, status, ev string
	var started, finished, beat int64
	if err := s.Scan(&r.ID, &r.Policy, &kind, &started, &finished, &status, &r.Error, &r.Owner, &beat, &ev); err != nil {
		return Run{}, err
	}
	r.Kind, r.Status, r.Started = Kind(kind), Status(status), store.FromMicros(started)
	if finished != 0 {
		r.Finished = store.FromMicros(finished)
	}
	if beat != 0 {
		r.Heartbeat = store.FromMicros(beat)
	}
	r.Evidence = json.RawMessage(ev)
	return r, nil
}

// Last returns the latest run of policy and kind; with okOnly, the latest
// successful one. ok is false when there is none.
func (h *History) Last(ctx context.Context, policy string, kind Kind, okOnly bool) (Run, bool, error) {
	q := runColumns + ` WHERE policy = $1 AND kind = $2`
	args := []any{policy, string(kind)}
	if okOnly {
		q += ` AND status = $3`
		args = append(args, string(StatusOK))
	}
	r, err := scanRun(h.db.QueryRowContext(ctx, q+` ORDER BY started DESC, id DESC LIMIT 1`, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, false, nil
	}
	if err != nil {
		return Run{}, false, fmt.Errorf("continuity: last %s run of %s: %w", kind, policy, err)
	}
	return r, true, nil
}

// List returns the latest runs of policy (all policies when empty), newest
// first, at most limit.
func (h *History) List(ctx context.Context, policy string, limit int) ([]Run, error) {
	return h.Query(ctx, RunQuery{Policy: policy, Limit: limit})
}

// RunQuery selects runs for Query.
type RunQuery struct {
	Policy string // empty: every policy
	Kinds  []Kind // empty: every kind
	Before int64  // only runs with a smaller id (a page cursor); 0: no bound
	Limit  int
}

// Query returns the runs q selects, newest (latest recorded) first.
func (h *History) Query(ctx context.Context, q RunQuery) ([]Run, error) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if q.Policy != "" {
		where = append(where, "policy = "+arg(q.Policy))
	}
	if len(q.Kinds) > 0 {
		var in []string
		for _, k := range q.Kinds {
			in = append(in, arg(string(k)))
		}
		where = append(where, "kind IN ("+strings.Join(in, ", ")+")")
	}
	if q.Before > 0 {
		where = append(where, "id < "+arg(q.Before))
	}
	sqlq := runColumns
	if len(where) > 0 {
		sqlq += " WHERE " + strings.Join(where, " AND ")
	}
	sqlq += " ORDER BY id DESC LIMIT " + arg(q.Limit)
	rows, err := h.db.QueryContext(ctx, sqlq, args...)
	if err != nil {
		return nil, fmt.Errorf("continuity: list runs: %w", err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("continuity: list runs: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Count returns how many runs of policy and kind were recorded.
func (h *History) Count(ctx context.Context, policy string, kind Kind) (int, error) {
	var n int
	if err := h.db.QueryRowContext(ctx, `SELECT count(*) FROM continuity_runs WHERE policy = $1 AND kind = $2`, policy, string(kind)).Scan(&n); err != nil {
		return 0, fmt.Errorf("continuity: count runs: %w", err)
	}
	return n, nil
}

// Get returns run id; store.ErrNotFound when there is none.
func (h *History) Get(ctx context.Context, id int64) (Run, error) {
	r, err := scanRun(h.db.QueryRowContext(ctx, runColumns+` WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, fmt.Errorf("continuity: run %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return Run{}, fmt.Errorf("continuity: run %d: %w", id, err)
	}
	return r, nil
}

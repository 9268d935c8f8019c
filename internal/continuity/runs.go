package continuity

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
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
	ID       int64           `json:"id"`
	Policy   string          `json:"policy"`
	Kind     Kind            `json:"kind"`
	Started  time.Time       `json:"started"`
	Finished time.Time       `json:"finished,omitzero"`
	Status   Status          `json:"status"`
	Error    string          `json:"error,omitempty"`
	Evidence json.RawMessage `json:"evidence,omitempty"`
}

// History stores runs.
type History struct{ db *store.DB }

// NewHistory uses db, migrated with Migrations.
func NewHistory(db *store.DB) *History { return &History{db: db} }

// Start records a run beginning at t and returns its id.
func (h *History) Start(ctx context.Context, policy string, kind Kind, t time.Time) (int64, error) {
	var id int64
	err := h.db.QueryRowContext(ctx, `INSERT INTO continuity_runs(policy, kind, started, finished, status, error, evidence)
		VALUES ($1, $2, $3, 0, $4, '', '{}') RETURNING id`, policy, string(kind), store.Micros(t), string(StatusRunning)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("continuity: record the start of %s %s: %w", policy, kind, err)
	}
	return id, nil
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

// AbandonRunning marks runs still "running" (a previous process died
// during them) as failed, and returns how many there were.
func (h *History) AbandonRunning(ctx context.Context, t time.Time) (int64, error) {
	res, err := h.db.ExecContext(ctx, `UPDATE continuity_runs SET finished = $1, status = $2, error = $3 WHERE status = $4`,
		store.Micros(t), string(StatusFailed), "interrupted: the process stopped during the run", string(StatusRunning))
	if err != nil {
		return 0, fmt.Errorf("continuity: mark interrupted runs: %w", err)
	}
	return res.RowsAffected()
}

const runColumns = `SELECT id, policy, kind, started, finished, status, error, evidence FROM continuity_runs`

func scanRun(s interface{ Scan(...any) error }) (Run, error) {
	var r Run
	var kind, status, ev string
	var started, finished int64
	if err := s.Scan(&r.ID, &r.Policy, &kind, &started, &finished, &status, &r.Error, &ev); err != nil {
		return Run{}, err
	}
	r.Kind, r.Status, r.Started = Kind(kind), Status(status), store.FromMicros(started)
	if finished != 0 {
		r.Finished = store.FromMicros(finished)
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
	q, args := runColumns, []any{}
	if policy != "" {
		q += ` WHERE policy = $1`
		args = append(args, policy)
	}
	args = append(args, limit)
	rows, err := h.db.QueryContext(ctx, q+fmt.Sprintf(` ORDER BY started DESC, id DESC LIMIT $%d`, len(args)), args...)
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

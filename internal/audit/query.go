package audit

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// MaxQueryLimit caps Filter.Limit; DefaultQueryLimit applies when it is 0.
const (
	MaxQueryLimit     = 1000
	DefaultQueryLimit = 100
)

// Filter selects entries for Query. Zero fields do not filter.
type Filter struct {
	// Since (inclusive) and Until (exclusive) bound the entry time.
	Since, Until time.Time
	// Actor, Resource and Result match exactly.
	Actor, Resource, Result string
	// Action matches as a prefix: "user." selects "user.login" and
	// "user.create".
	Action string
	// AfterSeq continues a listing: entries after it in the listing's order
	// (seq > AfterSeq ascending, seq < AfterSeq when Desc). Pass the last
	// Seq of the previous page.
	AfterSeq int64
	// Limit caps the entries returned: default DefaultQueryLimit, at most
	// MaxQueryLimit.
	Limit int
	// Desc lists newest first.
	Desc bool
}

const entryColumns = `seq, at, actor, source, action, resource, result, details, prev_hash, hash`

// where renders the filter's conditions (time and seq bounds; for Query
// also the field matches) as SQL with $n placeholders.
func (f Filter) where() (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(args))))
	}
	if !f.Since.IsZero() {
		add("at >= ?", store.Micros(f.Since))
	}
	if !f.Until.IsZero() {
		add("at < ?", store.Micros(f.Until))
	}
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if f.Resource != "" {
		add("resource = ?", f.Resource)
	}
	if f.Result != "" {
		add("result = ?", f.Result)
	}
	if f.Action != "" {
		add(`action LIKE ? ESCAPE '\'`, store.Like(f.Action)+"%")
	}
	if f.AfterSeq > 0 {
		if f.Desc {
			add("seq < ?", f.AfterSeq)
		} else {
			add("seq > ?", f.AfterSeq)
		}
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// Query returns the entries matching f, ordered by seq.
func (l *Log) Query(ctx context.Context, f Filter) ([]Entry, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultQueryLimit
	}
	limit = min(limit, MaxQueryLimit)
	where, args := f.where()
	order := " ORDER BY seq"
	if f.Desc {
		order += " DESC"
	}
	rows, err := l.db.QueryContext(ctx, `SELECT `+entryColumns+` FROM audit_entries`+where+order+fmt.Sprintf(" LIMIT %d", limit), args...)
	if err != nil {
		return nil, fmt.Errorf("audit: query entries: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var (
			e       Entry
			at      int64
			details []byte
		)
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.Source, &e.Action, &e.Resource, &e.Result, &details, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("audit: read entry: %w", err)
		}
		e.Time = store.FromMicros(at)
		if e.Details, err = decodeDetails(details); err != nil {
			return nil, fmt.Errorf("audit: entry %d: %w", e.Seq, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: query entries: %w", err)
	}
	return out, nil
}

// ExportLine is one line of Export's JSON Lines output.
type ExportLine struct {
	Seq      int64           `json:"seq"`
	Time     time.Time       `json:"time"`
	Actor    string          `json:"actor"`
	Source   string          `json:"source"`
	Action   string          `json:"action"`
	Resource string          `json:"resource"`
	Result   string          `json:"result"`
	Details  json.RawMessage `json:"details"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}

// Export writes the entries with since <= time < until (zero times do not
// bound) to w as JSON Lines, one ExportLine per line in seq order, hashes in
// hex and details as the stored canonical JSON, so the chain can be checked
// from the export alone. Rows are streamed, never all held in memory. It
// returns the number of entries written.
func (l *Log) Export(ctx context.Context, w io.Writer, since, until time.Time) (n int64, err error) {
	where, args := Filter{Since: since, Until: until}.where()
	rows, err := l.db.QueryContext(ctx, `SELECT `+entryColumns+` FROM audit_entries`+where+` ORDER BY seq`, args...)
	if err != nil {
		return 0, fmt.Errorf("audit: export: %w", err)
	}
	defer rows.Close()
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for rows.Next() {
		var (
			line      ExportLine
			at        int64
			details   []byte
			prev, sum []byte
		)
		if err := rows.Scan(&line.Seq, &at, &line.Actor, &line.Source, &line.Action, &line.Resource, &line.Result,
			&details, &prev, &sum); err != nil {
			return n, fmt.Errorf("audit: export: read entry: %w", err)
		}
		line.Time = store.FromMicros(at)
		line.Details = details
		line.PrevHash = hex.EncodeToString(prev)
		line.Hash = hex.EncodeToString(sum)
		if err := enc.Encode(&line); err != nil {
			return n, fmt.Errorf("audit: export entry %d: %w", line.Seq, err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("audit: export: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("audit: export: write: %w", err)
	}
	return n, nil
}

package monitor

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/monitor/alert"
	"github.com/bulwarkhq/bulwark/internal/monitor/check"
	"github.com/bulwarkhq/bulwark/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the monitor's schema, for store.DB.Migrate.
var Migrations = store.Migrations{Name: "monitor", FS: migrationFS, Dir: "migrations"}

// Resolutions of the metric history, in seconds; 0 is every sample.
const (
	ResRaw    = 0
	ResMinute = 60
	ResHour   = 3600
)

// History keeps metric samples at three resolutions, check runs by hour,
// when the monitor was running, alerts and silences. Every sample adds one
// raw row per series and folds into its minute and hour rows (sum, count,
// min, max), so queries at any range read few rows and no rollup job is
// needed; Prune drops each resolution past its retention.
type History struct {
	db *store.DB
}

// NewHistory uses db, migrated with Migrations.
func NewHistory(db *store.DB) *History { return &History{db: db} }

// Record stores one sample of every series at t.
func (h *History) Record(ctx context.Context, t time.Time, points []alert.Point) error {
	return h.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, res := range []int64{ResRaw, ResMinute, ResHour} {
			ts := bucket(t, res)
			stmt, err := tx.PrepareContext(ctx, `INSERT INTO monitor_samples(res, series, ts, total, n, lo, hi) VALUES ($1, $2, $3, $4, 1, $4, $4)
				ON CONFLICT (res, series, ts) DO UPDATE SET total = monitor_samples.total + excluded.total, n = monitor_samples.n + 1,
				lo = CASE WHEN excluded.lo < monitor_samples.lo THEN excluded.lo ELSE monitor_samples.lo END,
				hi = CASE WHEN excluded.hi > monitor_samples.hi THEN excluded.hi ELSE monitor_samples.hi END`)
			if err != nil {
				return err
			}
			for _, p := range points {
				if _, err := stmt.ExecContext(ctx, res, SeriesKey(p), ts, p.Value); err != nil {
					stmt.Close()
					return fmt.Errorf("monitor: record %s: %w", SeriesKey(p), err)
				}
			}
			if err := stmt.Close(); err != nil {
				return err
			}
		}
		return nil
	})
}

func bucket(t time.Time, res int64) int64 {
	us := store.Micros(t)
	if res == 0 {
		return us
	}
	step := res * 1e6
	return us - us%step
}

// Point is one value of a series' history: the mean, least and greatest
// of the samples in the bucket starting at Time.
type Point struct {
	Time    time.Time `json:"time"`
	Mean    float64   `json:"mean"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	Samples int       `json:"samples"`
}

// Series is one series' history.
type Series struct {
	Series     string  `json:"series"`
	Resolution int     `json:"resolution_seconds"`
	Points     []Point `json:"points"`
	// Truncated says the range held more than MaxPoints points: the
	// newest are returned; ask for a coarser resolution or a shorter
	// range.
	Truncated bool `json:"truncated,omitempty"`
}

// MaxPoints bounds the points one query returns per series, MaxSeries the
// series.
const (
	MaxPoints = 5000
	MaxSeries = 200
)

// Resolution picks the finest resolution that covers [from, to) in at most
// MaxPoints points and is still kept that far back.
func (r Retention) Resolution(from, to, now time.Time, sampleEvery time.Duration) int {
	span := to.Sub(from)
	if now.Sub(from) <= r.Raw && span/max(sampleEvery, time.Second) <= MaxPoints {
		return ResRaw
	}
	if now.Sub(from) <= r.Minute && span/time.Minute <= MaxPoints {
		return ResMinute
	}
	return ResHour
}

// Retention is how long each resolution is kept.
type Retention struct{ Raw, Minute, Hour time.Duration }

// Query returns the history of the series whose key starts with prefix
// (a name alone selects every series of that name) in [from, to] at res.
func (h *History) Query(ctx context.Context, prefix string, from, to time.Time, res int) ([]Series, error) {
	rows, err := h.db.QueryContext(ctx, `SELECT series, ts, total, n, lo, hi FROM monitor_samples
		WHERE res = $1 AND (series = $2 OR series LIKE $3 ESCAPE '\') AND ts >= $4 AND ts <= $5 ORDER BY series, ts`,
		res, prefix, likePrefix(prefix)+"{%", store.Micros(from), store.Micros(to))
	if err != nil {
		return nil, fmt.Errorf("monitor: query history: %w", err)
	}
	defer rows.Close()
	var out []Series
	for rows.Next() {
		var name string
		var ts int64
		var p Point
		var total float64
		if err := rows.Scan(&name, &ts, &total, &p.Samples, &p.Min, &p.Max); err != nil {
			return nil, err
		}
		p.Time, p.Mean = store.FromMicros(ts), total/float64(max(1, p.Samples))
		if len(out) == 0 || out[len(out)-1].Series != name {
			out = append(out, Series{Series: name, Resolution: res})
		}
		if len(out) > MaxSeries {
			return nil, fmt.Errorf("%w: %q selects more than %d series; name one series", ErrInvalid, prefix, MaxSeries)
		}
		s := &out[len(out)-1]
		if len(s.Points) == 2*MaxPoints {
			// Keep the newest, in at most twice MaxPoints: drop the
			// oldest MaxPoints at once.
			s.Points = append(s.Points[:0], s.Points[MaxPoints:]...)
			s.Truncated = true
		}
		s.Points = append(s.Points, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if s := &out[i]; len(s.Points) > MaxPoints {
			s.Points = s.Points[len(s.Points)-MaxPoints:]
			s.Truncated = true
		}
	}
	return out, nil
}

// likePrefix escapes LIKE's wildcards.
func likePrefix(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '%' || s[i] == '_' || s[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return string(b)
}

// SeriesList returns the keys of the series recorded since since.
func (h *History) SeriesList(ctx context.Context, since time.Time) ([]string, error) {
	rows, err := h.db.QueryContext(ctx, `SELECT DISTINCT series FROM monitor_samples WHERE res = $1 AND ts >= $2 ORDER BY series`, ResHour, bucket(since, ResHour))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Prune drops samples older than each resolution's retention, and check
// hours and alive rows older than the hour retention.
func (h *History) Prune(ctx context.Context, now time.Time, r Retention) error {
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM monitor_samples WHERE res = $1 AND ts < $2`, []any{ResRaw, store.Micros(now.Add(-r.Raw))}},
		{`DELETE FROM monitor_samples WHERE res = $1 AND ts < $2`, []any{ResMinute, store.Micros(now.Add(-r.Minute))}},
		{`DELETE FROM monitor_samples WHERE res = $1 AND ts < $2`, []any{ResHour, store.Micros(now.Add(-r.Hour))}},
		{`DELETE FROM monitor_check_hours WHERE ts < $1`, []any{store.Micros(now.Add(-r.Hour))}},
		{`DELETE FROM monitor_alive WHERE last < $1`, []any{store.Micros(now.Add(-r.Hour))}},
		{`DELETE FROM monitor_silences WHERE ends < $1`, []any{store.Micros(now)}},
	} {
		if _, err := h.db.ExecContext(ctx, q.sql, q.args...); err != nil {
			return fmt.Errorf("monitor: prune history: %w", err)
		}
	}
	return nil
}

// RecordChecks folds check results into their hours and keeps each
// check's last result, with the time its current state began.
func (h *History) RecordChecks(ctx context.Context, results []check.Result) error {
	if len(results) == 0 {
		return nil
	}
	return h.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, r := range results {
			if _, err := tx.ExecContext(ctx, `INSERT INTO monitor_check_hours(name, ts, runs, failures, seconds) VALUES ($1, $2, 1, $3, $4)
				ON CONFLICT (name, ts) DO UPDATE SET runs = monitor_check_hours.runs + 1, failures = monitor_check_hours.failures + excluded.failures,
				seconds = monitor_check_hours.seconds + excluded.seconds`, r.Name, bucket(r.Time, ResHour), 1-store.Bool(r.OK), r.DurationSeconds); err != nil {
				return fmt.Errorf("monitor: record check %s: %w", r.Name, err)
			}
			js, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO monitor_check_last(name, ts, ok, since, result) VALUES ($1, $2, $3, $2, $4)
				ON CONFLICT (name) DO UPDATE SET since = CASE WHEN monitor_check_last.ok = excluded.ok THEN monitor_check_last.since ELSE excluded.ts END,
				ts = excluded.ts, ok = excluded.ok, result = excluded.result`, r.Name, store.Micros(r.Time), store.Bool(r.OK), string(js)); err != nil {
				return fmt.Errorf("monitor: record check %s: %w", r.Name, err)
			}
		}
		return nil
	})
}

// CheckState is a check's last result and since when it has been in that
// state.
type CheckState struct {
	Result check.Result `json:"result"`
	Since  time.Time    `json:"since"`
}

// LastResults returns every check's last recorded result.
func (h *History) LastResults(ctx context.Context) (map[string]CheckState, error) {
	rows, err := h.db.QueryContext(ctx, `SELECT name, since, result FROM monitor_check_last`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]CheckState{}
	for rows.Next() {
		var name, js string
		var since int64
		if err := rows.Scan(&name, &since, &js); err != nil {
			return nil, err
		}
		var st CheckState
		if err := json.Unmarshal([]byte(js), &st.Result); err != nil {
			return nil, fmt.Errorf("monitor: last result of %s: %w", name, err)
		}
		st.Since = store.FromMicros(since)
		out[name] = st
	}
	return out, rows.Err()
}

// Alive records that the monitor that started at started is running at
// now.
func (h *History) Alive(ctx context.Context, started, now time.Time) error {
	_, err := h.db.ExecContext(ctx, `INSERT INTO monitor_alive(started, last) VALUES ($1, $2)
		ON CONFLICT (started) DO UPDATE SET last = excluded.last`, store.Micros(started), store.Micros(now))
	return err
}

// Span is a stretch of time.
type Span struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Running returns the spans the monitor ran within [from, to), merged,
// with slack added to each end of a run (the heartbeat's period).
func (h *History) Running(ctx context.Context, from, to time.Time, slack time.Duration) ([]Span, error) {
	rows, err := h.db.QueryContext(ctx, `SELECT started, last FROM monitor_alive WHERE last >= $1 AND started < $2 ORDER BY started`,
		store.Micros(from.Add(-slack)), store.Micros(to))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Span
	for rows.Next() {
		var a, b int64
		if err := rows.Scan(&a, &b); err != nil {
			return nil, err
		}
		s := Span{From: store.FromMicros(a), To: store.FromMicros(b).Add(slack)}
		if s.From.Before(from) {
			s.From = from
		}
		if s.To.After(to) {
			s.To = to
		}
		if n := len(out); n > 0 && !s.From.After(out[n-1].To) {
			if s.To.After(out[n-1].To) {
				out[n-1].To = s.To
			}
			continue
		}
		if s.To.After(s.From) {
			out = append(out, s)
		}
	}
	return out, rows.Err()
}

// Day is one day of a check's history.
type Day struct {
	Date     string `json:"date"`
	Runs     int    `json:"runs"`
	Failures int    `json:"failures"`
	// UptimePercent is the share of runs that passed; null without runs.
	UptimePercent *float64 `json:"uptime_percent"`
	// MonitoredPercent is the share of the day the monitor ran; the rest
	// is a gap, not counted as up or down.
	MonitoredPercent float64 `json:"monitored_percent"`
}

// Days returns a check's history by UTC day, the last n days up to now.
func (h *History) Days(ctx context.Context, name string, n int, now time.Time) ([]Day, error) {
	start := dayRangeStart(n, now)
	running, err := h.Running(ctx, start, now, 2*time.Minute)
	if err != nil {
		return nil, err
	}
	return h.days(ctx, name, n, now, running)
}

// dayRangeStart is the first day of the n days ending today (UTC).
func dayRangeStart(n int, now time.Time) time.Time {
	end := now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	return end.Add(-time.Duration(n) * 24 * time.Hour)
}

// days is Days with the monitor's running spans already read (a page of
// many checks reads them once).
func (h *History) days(ctx context.Context, name string, n int, now time.Time, running []Span) ([]Day, error) {
	start := dayRangeStart(n, now)
	end := start.Add(time.Duration(n) * 24 * time.Hour)
	rows, err := h.db.QueryContext(ctx, `SELECT ts, runs, failures FROM monitor_check_hours WHERE name = $1 AND ts >= $2 AND ts < $3`,
		name, store.Micros(start), store.Micros(end))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	days := make([]Day, n)
	for i := range days {
		days[i].Date = start.Add(time.Duration(i) * 24 * time.Hour).Format(time.DateOnly)
	}
	for rows.Next() {
		var ts int64
		var runs, fails int
		if err := rows.Scan(&ts, &runs, &fails); err != nil {
			return nil, err
		}
		i := int(store.FromMicros(ts).Sub(start) / (24 * time.Hour))
		if i >= 0 && i < n {
			days[i].Runs += runs
			days[i].Failures += fails
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range days {
		d0 := start.Add(time.Duration(i) * 24 * time.Hour)
		d1 := d0.Add(24 * time.Hour)
		if d1.After(now) {
			d1 = now
		}
		if !d1.After(d0) {
			continue
		}
		var up time.Duration
		for _, s := range running {
			a, b := maxTime(s.From, d0), minTime(s.To, d1)
			if b.After(a) {
				up += b.Sub(a)
			}
		}
		days[i].MonitoredPercent = min(100, 100*up.Seconds()/d1.Sub(d0).Seconds())
		if days[i].Runs > 0 {
			u := 100 * float64(days[i].Runs-days[i].Failures) / float64(days[i].Runs)
			days[i].UptimePercent = &u
		}
	}
	return days, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// SaveAlerts replaces the stored alerts with these.
func (h *History) SaveAlerts(ctx context.Context, alerts []alert.Alert) error {
	return h.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM monitor_alerts`); err != nil {
			return err
		}
		for _, a := range alerts {
			js, err := json.Marshal(a)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO monitor_alerts(alert_key, alert) VALUES ($1, $2)`, a.Key, string(js)); err != nil {
				return fmt.Errorf("monitor: save alert %s: %w", a.Key, err)
			}
		}
		return nil
	})
}

// LoadAlerts returns the stored alerts and silences.
func (h *History) LoadAlerts(ctx context.Context) ([]alert.Alert, []alert.Silence, error) {
	var alerts []alert.Alert
	if err := h.each(ctx, `SELECT alert FROM monitor_alerts ORDER BY alert_key`, func(js string) error {
		var a alert.Alert
		if err := json.Unmarshal([]byte(js), &a); err != nil {
			return err
		}
		alerts = append(alerts, a)
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("monitor: load alerts: %w", err)
	}
	var silences []alert.Silence
	if err := h.each(ctx, `SELECT silence FROM monitor_silences ORDER BY id`, func(js string) error {
		var s alert.Silence
		if err := json.Unmarshal([]byte(js), &s); err != nil {
			return err
		}
		silences = append(silences, s)
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("monitor: load silences: %w", err)
	}
	return alerts, silences, nil
}

func (h *History) each(ctx context.Context, q string, f func(string) error) error {
	rows, err := h.db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		if err := f(s); err != nil {
			return err
		}
	}
	return rows.Err()
}

// SaveSilence stores a silence.
func (h *History) SaveSilence(ctx context.Context, s alert.Silence) error {
	js, err := json.Marshal(s)
	if err != nil {
		return err
	}
	_, err = h.db.ExecContext(ctx, `INSERT INTO monitor_silences(id, ends, silence) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET ends = excluded.ends, silence = excluded.silence`, s.ID, store.Micros(s.End), string(js))
	return err
}

// DeleteSilence removes a silence.
func (h *History) DeleteSilence(ctx context.Context, id string) error {
	_, err := h.db.ExecContext(ctx, `DELETE FROM monitor_silences WHERE id = $1`, id)
	return err
}

// Incident is a note on a status page.
type Incident struct {
	ID      int64     `json:"id"`
	Page    string    `json:"page"`
	Title   string    `json:"title"`
	Body    string    `json:"body"`
	Status  string    `json:"status"`
	Author  string    `json:"author"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Incident statuses, as status pages name them.
var IncidentStatuses = []string{"investigating", "identified", "monitoring", "resolved"}

// ErrNotFound is returned for an unknown page, alert, silence or incident
// (alert.ErrNotFound: one sentinel for the API's 404).
var ErrNotFound = alert.ErrNotFound

// AddIncident stores a new incident note and returns it with its id.
func (h *History) AddIncident(ctx context.Context, in Incident) (Incident, error) {
	if !slices.Contains(IncidentStatuses, in.Status) {
		return in, fmt.Errorf("%w: status %q: want one of %v", ErrInvalid, in.Status, IncidentStatuses)
	}
	err := h.db.QueryRowContext(ctx, `INSERT INTO monitor_incidents(page, title, body, status, author, created, updated) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id`,
		in.Page, in.Title, in.Body, in.Status, in.Author, store.Micros(in.Created)).Scan(&in.ID)
	in.Updated = in.Created
	return in, err
}

// Incidents returns a page's incidents created since since, newest first.
func (h *History) Incidents(ctx context.Context, page string, since time.Time) ([]Incident, error) {
	rows, err := h.db.QueryContext(ctx, `SELECT id, page, title, body, status, author, created, updated FROM monitor_incidents
		WHERE page = $1 AND created >= $2 ORDER BY created DESC, id DESC LIMIT 200`, page, store.Micros(since))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Incident
	for rows.Next() {
		var in Incident
		var c, u int64
		if err := rows.Scan(&in.ID, &in.Page, &in.Title, &in.Body, &in.Status, &in.Author, &c, &u); err != nil {
			return nil, err
		}
		in.Created, in.Updated = store.FromMicros(c), store.FromMicros(u)
		out = append(out, in)
	}
	return out, rows.Err()
}

// ErrInvalid marks input the monitor refuses (the API answers 400).
var ErrInvalid = alert.ErrInvalid

// SeriesKey is the canonical text of a series: name{k="v",...}, labels
// sorted, as stored in the history.
func SeriesKey(p alert.Point) string {
	if len(p.Labels) == 0 {
		return p.Name
	}
	keys := make([]string, 0, len(p.Labels))
	for k := range p.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(p.Name)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteString(`="`)
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(p.Labels[k]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

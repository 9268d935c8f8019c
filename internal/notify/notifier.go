package notify

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the notify schema (the attempts table), for
// store.DB.Migrate.
var Migrations = store.Migrations{Name: "notify", FS: migrationFS, Dir: "migrations"}

// Retry and timeout defaults of a Notifier.
const (
	DefaultMaxAttempts    = 5
	DefaultInitialBackoff = time.Second
	DefaultMaxBackoff     = time.Minute
	DefaultAttemptTimeout = 30 * time.Second
	// MaxAttemptsLimit bounds Options.MaxAttempts.
	MaxAttemptsLimit = 20
)

// Bounds of what is recorded and published.
const (
	maxErrorBytes      = 4 << 10 // an attempt's error in the table
	maxEventErrorBytes = 1 << 10 // in an event's message
	recordTimeout      = 10 * time.Second
)

// actor is the events' actor.
var actor = events.SystemActor("notify")

// Errors of a Notifier, matched with errors.Is.
var (
	// ErrUnknownChannel: no channel of that name.
	ErrUnknownChannel = errors.New("no such notification channel")
	// ErrNotDelivered: every attempt failed (or a permanent error
	// stopped them, or the context ended).
	ErrNotDelivered = errors.New("not delivered")
	// ErrNotRecorded: an attempt could not be written to the store. On
	// its own (without ErrNotDelivered) the message was delivered, and
	// only the evidence is missing.
	ErrNotRecorded = errors.New("attempt not recorded")
)

// Channel is a named Sender.
type Channel struct {
	// Name identifies the channel (config's alerts.channels[].name).
	Name string
	// Kind is email, webhook, slack, or another word for a Sender of
	// another kind.
	Kind string
	// Sender delivers.
	Sender Sender
}

// Channels builds the senders of the configured channels (see New). The
// error names every channel that could not be built.
func Channels(chs []config.Channel, getenv func(string) string, readFile func(string) ([]byte, error)) ([]Channel, error) {
	var (
		out  []Channel
		errs []error
	)
	for _, ch := range chs {
		s, err := New(ch, getenv, readFile)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, Channel{Name: ch.Name, Kind: Kind(ch), Sender: s})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// Options tune a Notifier. The zero value gives the defaults.
type Options struct {
	// Bus receives notification.delivered and notification.failed; nil:
	// no events.
	Bus *events.Bus
	// Logger receives failed attempts (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Sleep waits d or until ctx is done, returning ctx's error then
	// (default: a timer). Tests make it advance their clock instead.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand is the source of delivery ids (default crypto/rand).
	Rand io.Reader
	// MaxAttempts is how many attempts one delivery makes at most, 1 to
	// MaxAttemptsLimit (default DefaultMaxAttempts).
	MaxAttempts int
	// InitialBackoff is the wait after the first failed attempt; each
	// further wait doubles, up to MaxBackoff.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// AttemptTimeout bounds one attempt (default DefaultAttemptTimeout).
	AttemptTimeout time.Duration
	// Host names this Bulwark host in messages (default os.Hostname()).
	Host string
}

// Notifier delivers messages to named channels, retrying with back-off,
// recording every attempt and publishing the outcome. It is safe for
// concurrent use.
type Notifier struct {
	db       *store.DB
	channels map[string]Channel
	o        Options
	randMu   sync.Mutex // guards o.Rand
}

// NewNotifier returns a Notifier of channels, recording attempts in db
// (migrated with Migrations).
func NewNotifier(db *store.DB, channels []Channel, o Options) (*Notifier, error) {
	if db == nil {
		return nil, errors.New("notify: a store is required to record attempts")
	}
	n := &Notifier{db: db, channels: make(map[string]Channel, len(channels))}
	for i, ch := range channels {
		switch {
		case ch.Name == "":
			return nil, fmt.Errorf("notify: channel %d has no name", i)
		case ch.Sender == nil:
			return nil, fmt.Errorf("notify: channel %q has no sender", ch.Name)
		}
		if _, dup := n.channels[ch.Name]; dup {
			return nil, fmt.Errorf("notify: channel %q is given twice", ch.Name)
		}
		if ch.Kind == "" {
			ch.Kind = "custom"
		}
		n.channels[ch.Name] = ch
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	switch {
	case o.MaxAttempts == 0:
		o.MaxAttempts = DefaultMaxAttempts
	case o.MaxAttempts < 1 || o.MaxAttempts > MaxAttemptsLimit:
		return nil, fmt.Errorf("notify: MaxAttempts %d is outside 1 to %d", o.MaxAttempts, MaxAttemptsLimit)
	}
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = DefaultInitialBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	o.MaxBackoff = max(o.MaxBackoff, o.InitialBackoff)
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = DefaultAttemptTimeout
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname() // a message without a host is still worth sending
	}
	n.o = o
	return n, nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Names returns the channels' names, sorted.
func (n *Notifier) Names() []string {
	names := make([]string, 0, len(n.channels))
	for name := range n.channels {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Backoff returns the wait after failed attempt number attempt (1-based):
// InitialBackoff doubled attempt-1 times, at most MaxBackoff.
func (n *Notifier) Backoff(attempt int) time.Duration {
	d := n.o.InitialBackoff
	for i := 1; i < attempt && d < n.o.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, n.o.MaxBackoff)
}

// Deliver sends m to channel, trying up to MaxAttempts times with back-off,
// and records each attempt. It publishes notification.delivered on
// success and notification.failed (severity error) otherwise. The error
// matches ErrUnknownChannel, ErrNotDelivered (with the last attempt's
// error) or ErrNotRecorded (see there); errors never hold the channel's
// secrets.
func (n *Notifier) Deliver(ctx context.Context, channel string, m Message) error {
	ch, ok := n.channels[channel]
	if !ok {
		return fmt.Errorf("notify: %w %q; the channels are: %s", ErrUnknownChannel, channel, strings.Join(n.Names(), ", "))
	}
	if m.Host == "" {
		m.Host = n.o.Host
	}
	// Normalized once, so every attempt sends the same message.
	m = m.normalize(n.o.Now())
	delivery, err := n.deliveryID()
	if err != nil {
		return fmt.Errorf("notify: channel %s: delivery id: %w", channel, err)
	}
	var recordErrs []error
	var lastErr error
	attempt := 1
	for ; ; attempt++ {
		started := n.o.Now()
		actx, cancel := context.WithTimeout(ctx, n.o.AttemptTimeout)
		lastErr = ch.Sender.Send(actx, m)
		cancel()
		if err := n.record(ctx, delivery, ch, m, attempt, started, n.o.Now().Sub(started), lastErr); err != nil {
			n.o.Logger.Error("notify: record attempt", "channel", channel, "attempt", attempt, "err", err)
			recordErrs = append(recordErrs, err)
		}
		if lastErr == nil {
			n.publish(ctx, ch, m, delivery, attempt, nil)
			return errors.Join(recordErrs...)
		}
		n.o.Logger.Warn("notify: attempt failed", "channel", channel, "kind", ch.Kind, "attempt", attempt, "err", lastErr)
		if attempt >= n.o.MaxAttempts || errors.Is(lastErr, ErrPermanent) || ctx.Err() != nil {
			break
		}
		if err := n.o.Sleep(ctx, n.Backoff(attempt)); err != nil {
			lastErr = fmt.Errorf("%w (waiting to retry: %w)", lastErr, err)
			break
		}
	}
	n.publish(ctx, ch, m, delivery, attempt, lastErr)
	plural := "s"
	if attempt == 1 {
		plural = ""
	}
	err = fmt.Errorf("notify: channel %s: %w after %d attempt%s: %w", channel, ErrNotDelivered, attempt, plural, lastErr)
	return errors.Join(append([]error{err}, recordErrs...)...)
}

// DeliverAll delivers m to each of channels concurrently (each once,
// however often it is named), so that a slow or failing channel does not
// hold back the others, and returns when all are done. The error joins
// the channels' errors, in the order given.
func (n *Notifier) DeliverAll(ctx context.Context, channels []string, m Message) error {
	names := slices.Clone(channels)
	seen := map[string]bool{}
	names = slices.DeleteFunc(names, func(s string) bool {
		dup := seen[s]
		seen[s] = true
		return dup
	})
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { errs[i] = n.Deliver(ctx, name, m) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Test delivers a test message (state test, severity info) to channel, as
// `bulwark alert test CHANNEL` does: recorded and retried like any other.
func (n *Notifier) Test(ctx context.Context, channel string) error {
	return n.Deliver(ctx, channel, TestMessage(channel, n.o.Host))
}

// TestMessage is the message Test sends.
func TestMessage(channel, host string) Message {
	return Message{
		Title: "Test notification",
		Text: fmt.Sprintf("This is a test of the notification channel %q, sent on request by Bulwark on %s. "+
			"If you can read it, the channel works; nothing else needs doing.", channel, host),
		Severity: events.SeverityInfo,
		State:    StateTest,
		Host:     host,
	}
}

func (n *Notifier) deliveryID() (string, error) {
	var b [8]byte
	n.randMu.Lock()
	defer n.randMu.Unlock()
	if _, err := io.ReadFull(n.o.Rand, b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// record writes one attempt. It outlives ctx's cancellation (an attempt
// cut short by shutdown is evidence too), within recordTimeout.
func (n *Notifier) record(ctx context.Context, delivery string, ch Channel, m Message, attempt int, started time.Time, d time.Duration, sendErr error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	errText := ""
	if sendErr != nil {
		errText = clip(strings.ToValidUTF8(sendErr.Error(), "\uFFFD"), maxErrorBytes)
	}
	_, err := n.db.ExecContext(ctx, `INSERT INTO notify_attempts(delivery, channel, kind, title, state, severity, alert, attempt, started, duration, ok, error)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		delivery, ch.Name, ch.Kind, m.Title, string(m.State), string(m.Severity), m.Alert,
		attempt, store.Micros(started), d.Microseconds(), store.Bool(sendErr == nil), errText)
	if err != nil {
		return fmt.Errorf("notify: record attempt %d to channel %s: %w: %w", attempt, ch.Name, ErrNotRecorded, err)
	}
	return nil
}

// publish announces the outcome of a delivery (sendErr nil: delivered).
func (n *Notifier) publish(ctx context.Context, ch Channel, m Message, delivery string, attempts int, sendErr error) {
	if n.o.Bus == nil {
		return
	}
	plural := "s"
	if attempts == 1 {
		plural = ""
	}
	e := events.Event{
		Module:   events.ModuleMonitoring,
		Actor:    actor,
		Resource: "channel/" + ch.Name,
		Data: map[string]any{
			"channel": ch.Name, "kind": ch.Kind, "delivery": delivery, "attempts": attempts,
			"title": m.Title, "state": string(m.State), "severity": string(m.Severity),
			"alert": m.Alert, "rule": m.Rule, "check": m.Check,
		},
	}
	if sendErr == nil {
		e.Type, e.Severity = events.TypeNotificationDelivered, events.SeverityInfo
		e.Message = events.OneLine(fmt.Sprintf("notification %q delivered to channel %s (%s) after %d attempt%s", m.Title, ch.Name, ch.Kind, attempts, plural))
	} else {
		errText := clip(events.OneLine(sendErr.Error()), maxEventErrorBytes)
		e.Type, e.Severity = events.TypeNotificationFailed, events.SeverityError
		e.Data["error"] = errText
		e.Message = events.OneLine(fmt.Sprintf("notification %q to channel %s (%s) failed after %d attempt%s: %s", m.Title, ch.Name, ch.Kind, attempts, plural, errText))
	}
	if _, err := n.o.Bus.Publish(context.WithoutCancel(ctx), e); err != nil {
		n.o.Logger.Warn("notify: publish event", "type", string(e.Type), "channel", ch.Name, "err", err)
	}
}

// Attempt is one recorded attempt.
type Attempt struct {
	ID int64 `json:"id"`
	// Delivery groups the attempts of one message to one channel.
	Delivery string          `json:"delivery"`
	Channel  string          `json:"channel"`
	Kind     string          `json:"kind"`
	Title    string          `json:"title"`
	State    State           `json:"state"`
	Severity events.Severity `json:"severity"`
	Alert    string          `json:"alert,omitempty"`
	// Attempt is 1 for the first try of a delivery, 2 for the first retry.
	Attempt int       `json:"attempt"`
	Started time.Time `json:"started"`
	// Duration is microsecond-precise; JSON gives nanoseconds.
	Duration time.Duration `json:"duration"`
	OK       bool          `json:"ok"`
	Error    string        `json:"error,omitempty"`
}

// Outcome selects attempts by result.
type Outcome string

// Outcomes of AttemptFilter.
const (
	OutcomeAny    Outcome = ""
	OutcomeOK     Outcome = "ok"
	OutcomeFailed Outcome = "failed"
)

// Query limits of Attempts.
const (
	DefaultAttemptsLimit = 100
	MaxAttemptsQuery     = 1000
)

// AttemptFilter selects attempts; the zero value selects the latest
// DefaultAttemptsLimit of all.
type AttemptFilter struct {
	Channel  string  // empty: every channel
	Delivery string  // empty: every delivery
	Outcome  Outcome // OutcomeAny, OutcomeOK or OutcomeFailed
	Since    time.Time
	// Before is a page cursor: only attempts with a smaller id.
	Before int64
	// Limit is the page size (default DefaultAttemptsLimit, at most
	// MaxAttemptsQuery).
	Limit int
}

const attemptColumns = `SELECT id, delivery, channel, kind, title, state, severity, alert, attempt, started, duration, ok, error FROM notify_attempts`

// Attempts returns the attempts f selects, newest first.
func (n *Notifier) Attempts(ctx context.Context, f AttemptFilter) ([]Attempt, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.Channel != "" {
		where = append(where, "channel = "+arg(f.Channel))
	}
	if f.Delivery != "" {
		where = append(where, "delivery = "+arg(f.Delivery))
	}
	switch f.Outcome {
	case OutcomeAny:
	case OutcomeOK, OutcomeFailed:
		where = append(where, "ok = "+arg(store.Bool(f.Outcome == OutcomeOK)))
	default:
		return nil, fmt.Errorf("notify: outcome %q: want ok, failed or nothing", f.Outcome)
	}
	if !f.Since.IsZero() {
		where = append(where, "started >= "+arg(store.Micros(f.Since)))
	}
	if f.Before > 0 {
		where = append(where, "id < "+arg(f.Before))
	}
	limit := cmp.Or(f.Limit, DefaultAttemptsLimit)
	limit = min(max(limit, 1), MaxAttemptsQuery)
	q := attemptColumns
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT " + arg(limit)
	rows, err := n.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("notify: list attempts: %w", err)
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var (
			a                      Attempt
			state, severity        string
			started, duration, okv int64
		)
		if err := rows.Scan(&a.ID, &a.Delivery, &a.Channel, &a.Kind, &a.Title, &state, &severity, &a.Alert,
			&a.Attempt, &started, &duration, &okv, &a.Error); err != nil {
			return nil, fmt.Errorf("notify: list attempts: %w", err)
		}
		a.State, a.Severity = State(state), events.Severity(severity)
		a.Started, a.Duration, a.OK = store.FromMicros(started), time.Duration(duration)*time.Microsecond, okv != 0
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("notify: list attempts: %w", err)
	}
	return out, nil
}

// LastDelivered returns when a message was last delivered to channel (the
// end of its successful attempt); ok is false when none ever was.
func (n *Notifier) LastDelivered(ctx context.Context, channel string) (t time.Time, ok bool, err error) {
	var last sql.NullInt64
	if err := n.db.QueryRowContext(ctx, `SELECT max(started + duration) FROM notify_attempts WHERE channel = $1 AND ok = 1`, channel).Scan(&last); err != nil {
		return time.Time{}, false, fmt.Errorf("notify: last delivery to channel %s: %w", channel, err)
	}
	if !last.Valid {
		return time.Time{}, false, nil
	}
	return store.FromMicros(last.Int64), true, nil
}

// LastDeliveries returns, per channel that ever delivered, when it last
// did: LastDelivered for them all in one query, for the posture report.
func (n *Notifier) LastDeliveries(ctx context.Context) (map[string]time.Time, error) {
	rows, err := n.db.QueryContext(ctx, `SELECT channel, max(started + duration) FROM notify_attempts WHERE ok = 1 GROUP BY channel`)
	if err != nil {
		return nil, fmt.Errorf("notify: last deliveries: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var (
			ch string
			us int64
		)
		if err := rows.Scan(&ch, &us); err != nil {
			return nil, fmt.Errorf("notify: last deliveries: %w", err)
		}
		out[ch] = store.FromMicros(us)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("notify: last deliveries: %w", err)
	}
	return out, nil
}

// Prune deletes the attempts started before before and returns how many.
func (n *Notifier) Prune(ctx context.Context, before time.Time) (int64, error) {
	res, err := n.db.ExecContext(ctx, `DELETE FROM notify_attempts WHERE started < $1`, store.Micros(before))
	if err != nil {
		return 0, fmt.Errorf("notify: prune attempts: %w", err)
	}
	k, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("notify: prune attempts: %w", err)
	}
	return k, nil
}

// Package audit is Bulwark's tamper-evident audit log.
//
// Every entry is hash-chained to the one before it (see canonical.go for the
// exact bytes), and every CheckpointEvery entries the chain's head is signed
// with an ed25519 key kept in the data directory. Verify walks the chain and
// names the first altered, removed or reordered entry; an Anchor (a signed
// head exported to a place an attacker does not control) also catches the
// newest entries being cut off, and a rewrite by someone holding the key.
// Prune applies retention while keeping the chain verifiable from the oldest
// kept checkpoint. docs/audit.md describes the formats and the guarantees.
//
// Appends serialise on a single-row head table, so several control-plane
// replicas may append to one PostgreSQL database concurrently.
package audit

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/store"
)

//go:embed migrations/*.sql
var embeddedFS embed.FS

// Migrations is the audit log's schema; apply it with store.DB.Migrate.
var Migrations = store.Migrations{Name: "audit", FS: embeddedFS, Dir: "migrations"}

// Results an entry may record.
const (
	ResultOK     = "ok"
	ResultDenied = "denied"
	ResultFailed = "failed"
	ResultError  = "error"
)

// Limits on an entry's fields, so one caller cannot bloat the log.
const (
	MaxFieldBytes   = 4096
	MaxDetailsBytes = 64 << 10
)

// DefaultCheckpointEvery is used when Options.CheckpointEvery is zero.
const DefaultCheckpointEvery = 1000

// ErrInvalidEntry is returned (wrapped) when an entry is rejected before it
// is written: a missing action, an unknown result, oversized fields.
var ErrInvalidEntry = errors.New("invalid audit entry")

// ErrNoKey is returned when an operation needs the signing key and the Log
// was created without one.
var ErrNoKey = errors.New("audit: no signing key (LoadOrCreateKey)")

// Entry is one audit record. Seq, PrevHash and Hash are filled by Append.
type Entry struct {
	// Seq numbers entries 1, 2, 3... without gaps.
	Seq int64
	// Time defaults to Options.Now at append; stored with microsecond precision.
	Time time.Time
	// Actor is who acted: "user:alice", "token:ci", "system".
	Actor string
	// Source is where from, typically the client's IP address.
	Source string
	// Action is what was done, dotted: "user.login", "grant.create".
	Action string
	// Resource is what it was done to: "user:bob", "config".
	Resource string
	// Result is one of ResultOK, ResultDenied, ResultFailed, ResultError.
	Result string
	// Details are extra facts, stored as canonical JSON. Read back, numbers
	// are json.Number so that large integers survive exactly.
	Details map[string]any
	// PrevHash is the previous entry's Hash (32 zero bytes for Seq 1).
	PrevHash []byte
	// Hash is SHA-256(PrevHash || canonical encoding of the entry).
	Hash []byte
}

// Options tune a Log.
type Options struct {
	// CheckpointEvery is how many entries apart signed checkpoints are
	// (config audit.checkpoint_every); 0 means DefaultCheckpointEvery.
	// Changing it takes effect after the next checkpoint already promised.
	CheckpointEvery int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Log is the audit log stored in one database. It is safe for concurrent
// use, and several Logs (replicas) may share one PostgreSQL database.
type Log struct {
	db    *store.DB
	key   ed25519.PrivateKey
	pub   ed25519.PublicKey
	keyID string
	every int64
	now   func() time.Time

	mu      sync.Mutex // guards stmts
	stmts   *appendStmts
	writeMu sync.Mutex // serialises Append on SQLite
}

// appendStmts are prepared once per Log: an append is three round trips
// (lock the head, insert the entry, move the head) and parsing them each
// time would cost more than executing them.
type appendStmts struct {
	head, insert, move *sql.Stmt
}

// New returns a Log over db, which must have Migrations applied. key signs
// checkpoints, anchors and prune records; it may be nil for a Log that only
// reads and verifies (Append then fails with ErrNoKey when a checkpoint is
// due, so pass the key wherever entries are written).
func New(db *store.DB, key ed25519.PrivateKey, o Options) *Log {
	l := &Log{db: db, key: key, every: int64(o.CheckpointEvery), now: o.Now}
	if l.every <= 0 {
		l.every = DefaultCheckpointEvery
	}
	if l.now == nil {
		l.now = time.Now
	}
	if key != nil {
		l.pub = key.Public().(ed25519.PublicKey)
		l.keyID = KeyID(l.pub)
	}
	return l
}

// Close releases the Log's prepared statements; the database stays open.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stmts == nil {
		return nil
	}
	err := errors.Join(l.stmts.head.Close(), l.stmts.insert.Close(), l.stmts.move.Close())
	l.stmts = nil
	return err
}

func (l *Log) prepared(ctx context.Context) (*appendStmts, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stmts != nil {
		return l.stmts, nil
	}
	lock := ""
	if l.db.Dialect == store.Postgres {
		lock = " FOR UPDATE"
	}
	var s appendStmts
	var err error
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = l.db.PrepareContext(ctx, q)
		return st
	}
	s.head = prep(`SELECT seq, hash, next_checkpoint FROM audit_head WHERE id = 1` + lock)
	s.insert = prep(`INSERT INTO audit_entries (seq, at, actor, source, action, resource, result, details, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`)
	s.move = prep(`UPDATE audit_head SET seq = $1, hash = $2, next_checkpoint = $3 WHERE id = 1`)
	if err != nil {
		for _, st := range []*sql.Stmt{s.head, s.insert, s.move} {
			if st != nil {
				st.Close()
			}
		}
		return nil, fmt.Errorf("audit: prepare append statements: %w", err)
	}
	l.stmts = &s
	return l.stmts, nil
}

// Append adds e to the log in its own transaction and returns it with Seq,
// Time (if it was zero), PrevHash and Hash filled. When the new entry's seq
// is the one a checkpoint is due at, the checkpoint is written in the same
// transaction.
func (l *Log) Append(ctx context.Context, e Entry) (Entry, error) {
	if l.db.Dialect == store.SQLite {
		// SQLite admits one writer; waiting writers poll with growing
		// sleeps and, under a steady stream of appends, can starve past
		// the busy timeout. Queue this process's appends here instead.
		l.writeMu.Lock()
		defer l.writeMu.Unlock()
	}
	var out Entry
	err := l.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = l.AppendTx(ctx, tx, e)
		return err
	})
	return out, err
}

// AppendTx is Append inside the caller's transaction, which must belong to
// the Log's database: the change being audited and its entry then commit or
// roll back together. On PostgreSQL the head row stays locked until the
// caller's transaction ends, so keep such transactions short.
func (l *Log) AppendTx(ctx context.Context, tx *sql.Tx, e Entry) (Entry, error) {
	details, err := validate(&e)
	if err != nil {
		return Entry{}, err
	}
	st, err := l.prepared(ctx)
	if err != nil {
		return Entry{}, err
	}
	var (
		headSeq, next int64
		prev          []byte
	)
	if err := tx.StmtContext(ctx, st.head).QueryRowContext(ctx).Scan(&headSeq, &prev, &next); err != nil {
		return Entry{}, fmt.Errorf("audit: read head: %w", err)
	}
	if prev == nil {
		prev = genesis
	}
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	micros := store.Micros(e.Time)
	e.Time = store.FromMicros(micros)
	e.Seq = headSeq + 1
	e.PrevHash = prev
	canon := appendCanonical(nil, e.Seq, micros, []byte(e.Actor), []byte(e.Source), []byte(e.Action),
		[]byte(e.Resource), []byte(e.Result), details)
	e.Hash = entryHash(prev, canon)

	if _, err := tx.StmtContext(ctx, st.insert).ExecContext(ctx, e.Seq, micros, e.Actor, e.Source, e.Action,
		e.Resource, e.Result, string(details), e.PrevHash, e.Hash); err != nil {
		return Entry{}, fmt.Errorf("audit: insert entry %d: %w", e.Seq, err)
	}
	if e.Seq >= next {
		if next, err = l.checkpoint(ctx, tx, e.Seq, e.Hash); err != nil {
			return Entry{}, err
		}
	}
	if _, err := tx.StmtContext(ctx, st.move).ExecContext(ctx, e.Seq, e.Hash, next); err != nil {
		return Entry{}, fmt.Errorf("audit: move head to %d: %w", e.Seq, err)
	}
	// Give the caller its own copy of Details as stored, so what it holds is
	// what was hashed.
	if e.Details, err = decodeDetails(details); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// checkpoint signs the chain at seq and returns the seq at which the next
// one is due: the next multiple of CheckpointEvery. The very first entry is
// always checkpointed, so every stretch of the chain is covered by a signed
// promise of where the next checkpoint must be.
func (l *Log) checkpoint(ctx context.Context, tx *sql.Tx, seq int64, hash []byte) (int64, error) {
	if l.key == nil {
		return 0, fmt.Errorf("audit: checkpoint at entry %d: %w", seq, ErrNoKey)
	}
	next := (seq/l.every + 1) * l.every
	at := store.Micros(l.now())
	sig := ed25519.Sign(l.key, checkpointMessage(seq, next, at, hash))
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_checkpoints (seq, hash, next_seq, at, key_id, signature)
		VALUES ($1, $2, $3, $4, $5, $6)`, seq, hash, next, at, l.keyID, sig); err != nil {
		return 0, fmt.Errorf("audit: write checkpoint %d: %w", seq, err)
	}
	return next, nil
}

// validate checks e's fields and returns its canonical details.
func validate(e *Entry) ([]byte, error) {
	if e.Action == "" {
		return nil, fmt.Errorf("%w: action is empty", ErrInvalidEntry)
	}
	switch e.Result {
	case ResultOK, ResultDenied, ResultFailed, ResultError:
	default:
		return nil, fmt.Errorf("%w: result %q, want ok, denied, failed or error", ErrInvalidEntry, e.Result)
	}
	for _, f := range []struct{ name, v string }{
		{"actor", e.Actor}, {"source", e.Source}, {"action", e.Action}, {"resource", e.Resource},
	} {
		if len(f.v) > MaxFieldBytes {
			return nil, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrInvalidEntry, f.name, len(f.v), MaxFieldBytes)
		}
		// PostgreSQL text cannot hold NUL or invalid UTF-8; refuse both on
		// every engine so the log's content does not depend on the engine.
		if !utf8.ValidString(f.v) || strings.IndexByte(f.v, 0) >= 0 {
			return nil, fmt.Errorf("%w: %s is not valid UTF-8 text without NUL", ErrInvalidEntry, f.name)
		}
	}
	if store.Micros(e.Time) < 0 {
		return nil, fmt.Errorf("%w: time %v is before 1970", ErrInvalidEntry, e.Time)
	}
	d, err := canonicalDetails(e.Details)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEntry, err)
	}
	if len(d) > MaxDetailsBytes {
		return nil, fmt.Errorf("%w: details are %d bytes of JSON, limit %d", ErrInvalidEntry, len(d), MaxDetailsBytes)
	}
	return d, nil
}

// Head returns the newest entry's seq and hash; 0 and nil for an empty log
// (after Prune the head still names the newest entry).
func (l *Log) Head(ctx context.Context) (seq int64, hash []byte, err error) {
	if err := l.db.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &hash); err != nil {
		return 0, nil, fmt.Errorf("audit: read head: %w", err)
	}
	return seq, hash, nil
}

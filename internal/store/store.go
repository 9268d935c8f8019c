// Package store owns Bulwark's database handle: SQLite (modernc.org/sqlite,
// pure Go) under the data directory by default, or PostgreSQL (pgx) when the
// configuration gives a DSN so that several control-plane replicas can share
// one database.
//
// Capabilities keep their own SQL and migrations in their own folders. To let
// one statement serve both engines, queries use `$1`-style placeholders (which
// both drivers accept), integers for times (Unix microseconds) and booleans,
// and TEXT/blob columns only. The few DDL differences are written as
// placeholders in migration files and rendered per dialect (see migrate.go).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the SQL engine behind a DB.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// ErrNotFound is returned by capability stores when a row does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a write collides with existing data, such as a
// duplicate unique key.
var ErrConflict = errors.New("conflict")

// DB is a database handle that knows its dialect.
type DB struct {
	*sql.DB
	Dialect Dialect
	// Path is the SQLite file, empty for PostgreSQL.
	Path string
	// writer admits one SQLite write transaction at a time. SQLite allows
	// one writer anyway, but its busy handler polls with sleeps, so under
	// contention a waiting writer can starve past the busy timeout; a Go
	// queue is fair and cheap. Nil for PostgreSQL. Tx must not be nested.
	writer chan struct{}
}

// Options choose and tune the database.
type Options struct {
	// Driver is "sqlite" (default) or "postgres".
	Driver string
	// DSN is the PostgreSQL connection string; unused for SQLite.
	DSN string
	// DataDir holds bulwark.db when Driver is sqlite.
	DataDir string
	// MaxOpenConns caps PostgreSQL connections (default 10).
	MaxOpenConns int
}

// Open opens (creating if needed) the database described by o and checks that
// it answers. It does not migrate; call Migrate.
func Open(ctx context.Context, o Options) (*DB, error) {
	switch o.Driver {
	case "", string(SQLite):
		if o.DataDir == "" {
			return nil, errors.New("store: sqlite needs a data directory (--data DIR)")
		}
		if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create data directory: %w", err)
		}
		return OpenSQLite(ctx, filepath.Join(o.DataDir, "bulwark.db"))
	case string(Postgres):
		if o.DSN == "" {
			return nil, errors.New("store: driver postgres needs store.dsn in the configuration")
		}
		return OpenPostgres(ctx, o.DSN, o.MaxOpenConns)
	default:
		return nil, fmt.Errorf("store: unknown driver %q (want sqlite or postgres)", o.Driver)
	}
}

// OpenSQLite opens the SQLite database file at path with WAL journaling,
// foreign keys on, a busy timeout and IMMEDIATE transactions (a transaction
// takes the write lock at BEGIN, so read-then-write transactions never fail
// with SQLITE_BUSY half-way).
func OpenSQLite(ctx context.Context, path string) (*DB, error) {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	sdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	// One writer at a time is SQLite's model; a small pool serves readers.
	sdb.SetMaxOpenConns(4)
	sdb.SetConnMaxIdleTime(5 * time.Minute)
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
		sdb.Close()
		return nil, fmt.Errorf("store: restrict sqlite file mode: %w", err)
	}
	return &DB{DB: sdb, Dialect: SQLite, Path: path, writer: make(chan struct{}, 1)}, nil
}

// OpenPostgres connects to PostgreSQL with the pgx driver.
func OpenPostgres(ctx context.Context, dsn string, maxOpen int) (*DB, error) {
	sdb, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	if maxOpen <= 0 {
		maxOpen = 10
	}
	sdb.SetMaxOpenConns(maxOpen)
	sdb.SetMaxIdleConns(maxOpen)
	sdb.SetConnMaxIdleTime(5 * time.Minute)
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("store: connect to postgres: %w", err)
	}
	return &DB{DB: sdb, Dialect: Postgres}, nil
}

// Tx runs fn in one transaction and commits it if fn returns nil. Writes
// that belong together go through Tx so a failure leaves nothing half-done.
// On PostgreSQL a serialization failure or deadlock is retried a few times.
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	const attempts = 5
	var err error
	for i := 0; i < attempts; i++ {
		err = db.tx(ctx, fn)
		if err == nil || !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(i+1) * 10 * time.Millisecond):
		}
	}
	return err
}

func (db *DB) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if db.writer != nil {
		select {
		case db.writer <- struct{}{}:
			defer func() { <-db.writer }()
		case <-ctx.Done():
			return fmt.Errorf("store: waiting for the write lock: %w", ctx.Err())
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("store: rollback: %w", rerr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	return false
}

// IsUniqueViolation reports whether err is a unique or primary-key
// constraint failure on either engine.
func IsUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// IsForeignKeyViolation reports whether err is a foreign-key failure.
func IsForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23503"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// Micros converts t to the integer representation stored in every time
// column: microseconds since the Unix epoch, UTC. The zero time maps to 0.
func Micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// FromMicros is the inverse of Micros; 0 maps to the zero time.
func FromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// Bool converts b to the 0/1 integer stored in boolean columns.
func Bool(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Like escapes s for use inside a LIKE pattern with ESCAPE '\'.
func Like(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

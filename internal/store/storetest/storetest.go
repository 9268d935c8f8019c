// Package storetest gives tests a fresh, migrated database on every engine
// Bulwark supports, so one conformance suite runs against SQLite and the real
// PostgreSQL server alike.
//
// PostgreSQL is reached through BULWARK_TEST_PG_DSN (default
// postgres://root@127.0.0.1:5432/test?sslmode=disable); each test gets its own
// schema, dropped when the test ends. `make test` starts PostgreSQL; a test
// run without it fails rather than silently skipping the engine.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// DefaultPostgresDSN is used when BULWARK_TEST_PG_DSN is unset.
const DefaultPostgresDSN = "postgres://root@127.0.0.1:5432/test?sslmode=disable"

// PostgresDSN returns the DSN of the test PostgreSQL server.
func PostgresDSN() string {
	if v := os.Getenv("BULWARK_TEST_PG_DSN"); v != "" {
		return v
	}
	return DefaultPostgresDSN
}

// Each runs f once per engine, as subtests "sqlite" and "postgres", each on a
// fresh database with sets migrated.
func Each(t *testing.T, f func(t *testing.T, db *store.DB), sets ...store.Migrations) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { f(t, SQLite(t, sets...)) })
	t.Run("postgres", func(t *testing.T) { f(t, Postgres(t, sets...)) })
}

// SQLite returns a migrated SQLite database in a temporary directory.
func SQLite(t testing.TB, sets ...store.Migrations) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "bulwark.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx, sets...); err != nil {
		t.Fatalf("migrate sqlite: %v", err)
	}
	return db
}

// Postgres returns a migrated database living in a fresh schema of the test
// PostgreSQL server; the schema is dropped when the test ends.
func Postgres(t testing.TB, sets ...store.Migrations) *store.DB {
	t.Helper()
	ctx := context.Background()
	dsn, cleanup := FreshSchema(t)
	t.Cleanup(cleanup)
	db, err := store.OpenPostgres(ctx, dsn, 8)
	if err != nil {
		t.Fatalf("open postgres (is it running? make test starts it): %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx, sets...); err != nil {
		t.Fatalf("migrate postgres: %v", err)
	}
	return db
}

// FreshSchema creates an empty schema on the test server and returns a DSN
// whose search_path points at it, plus a function that drops it.
func FreshSchema(t testing.TB) (dsn string, cleanup func()) {
	t.Helper()
	base := PostgresDSN()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "bwtest_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatalf("postgres at %s unreachable or unusable (make test starts it): %v", base, err)
	}
	u, err := url.Parse(base)
	if err != nil {
		admin.Close()
		t.Fatalf("parse %s: %v", base, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	}
}

package store_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
	"github.com/google/go-cmp/cmp"
)

var testSet = store.Migrations{Name: "storetest", FS: os.DirFS("testdata"), Dir: "migrations"}

func TestConformance(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		t.Run("migrate is idempotent", func(t *testing.T) {
			if err := db.Migrate(ctx, testSet); err != nil {
				t.Fatalf("second migrate: %v", err)
			}
		})
		t.Run("insert returning and blob round trip", func(t *testing.T) {
			var id int64
			payload := []byte{0, 1, 2, 255}
			err := db.QueryRowContext(ctx, `INSERT INTO things(name, payload, created_at) VALUES ($1, $2, $3) RETURNING id`,
				"a", payload, store.Micros(time.Unix(1700000000, 123000))).Scan(&id)
			if err != nil {
				t.Fatalf("insert: %v", err)
			}
			var got []byte
			var at int64
			if err := db.QueryRowContext(ctx, `SELECT payload, created_at FROM things WHERE id = $1`, id).Scan(&got, &at); err != nil {
				t.Fatalf("select: %v", err)
			}
			if diff := cmp.Diff(payload, got); diff != "" {
				t.Errorf("payload (-want +got):\n%s", diff)
			}
			if want := time.Unix(1700000000, 123000).UTC(); !store.FromMicros(at).Equal(want) {
				t.Errorf("time = %v, want %v", store.FromMicros(at), want)
			}
		})
		t.Run("unique violation is recognised", func(t *testing.T) {
			_, err := db.ExecContext(ctx, `INSERT INTO things(name, created_at) VALUES ($1, 0)`, "a")
			if !store.IsUniqueViolation(err) {
				t.Fatalf("got %v, want a unique violation", err)
			}
		})
		t.Run("foreign keys are enforced", func(t *testing.T) {
			_, err := db.ExecContext(ctx, `INSERT INTO parts(thing_id, label) VALUES ($1, $2)`, 999999, "x")
			if !store.IsForeignKeyViolation(err) {
				t.Fatalf("got %v, want a foreign key violation", err)
			}
		})
		t.Run("tx rolls back on error", func(t *testing.T) {
			boom := errors.New("boom")
			err := db.Tx(ctx, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO things(name, created_at) VALUES ($1, 0)`, "rolled-back"); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("Tx error = %v, want boom", err)
			}
			var n int
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM things WHERE name = $1`, "rolled-back").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("rolled-back row count = %d, want 0", n)
			}
		})
		t.Run("concurrent tx counters do not lose updates", func(t *testing.T) {
			if _, err := db.ExecContext(ctx, `INSERT INTO things(name, created_at) VALUES ('counter', 0)`); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			const workers, each = 4, 25
			errs := make(chan error, workers)
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < each; i++ {
						err := db.Tx(ctx, func(tx *sql.Tx) error {
							lock := ""
							if db.Dialect == store.Postgres {
								lock = " FOR UPDATE"
							}
							var v int64
							if err := tx.QueryRowContext(ctx, `SELECT created_at FROM things WHERE name = 'counter'`+lock).Scan(&v); err != nil {
								return err
							}
							_, err := tx.ExecContext(ctx, `UPDATE things SET created_at = $1 WHERE name = 'counter'`, v+1)
							return err
						})
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("tx: %v", err)
			}
			var v int64
			if err := db.QueryRowContext(ctx, `SELECT created_at FROM things WHERE name = 'counter'`).Scan(&v); err != nil {
				t.Fatal(err)
			}
			if v != workers*each {
				t.Errorf("counter = %d, want %d", v, workers*each)
			}
		})
	}, testSet)
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		o    store.Options
	}{
		{"sqlite without data dir", store.Options{Driver: "sqlite"}},
		{"postgres without dsn", store.Options{Driver: "postgres"}},
		{"unknown driver", store.Options{Driver: "oracle", DataDir: t.TempDir()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if db, err := store.Open(ctx, tt.o); err == nil {
				db.Close()
				t.Fatal("Open succeeded, want an error")
			}
		})
	}
}

func TestSQLitePragmas(t *testing.T) {
	db := storetest.SQLite(t, testSet)
	var mode string
	var fk int
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || fk != 1 {
		t.Errorf("journal_mode=%q foreign_keys=%d, want wal and 1", mode, fk)
	}
}

func TestConcurrentMigratePostgres(t *testing.T) {
	// Several replicas starting at once must not race each other's migrations.
	dsn, cleanup := storetest.FreshSchema(t)
	defer cleanup()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := store.OpenPostgres(ctx, dsn, 2)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			errs <- db.Migrate(ctx, testSet)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("replica migrate: %v", err)
		}
	}
}

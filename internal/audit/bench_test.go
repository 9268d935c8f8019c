package audit

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

func benchAppend(b *testing.B, db *store.DB) {
	l := New(db, testKey(1), Options{CheckpointEvery: DefaultCheckpointEvery})
	defer l.Close()
	ctx := context.Background()
	e := Entry{Actor: "user:alice", Source: "192.0.2.7", Action: "grant.create", Resource: "role:backup-admin",
		Result: ResultOK, Details: map[string]any{"module": "continuity", "level": "write", "tags": []string{"prod"}}}
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if _, err := l.Append(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
}

// BenchmarkAppendSQLite measures one entry per transaction, each committed.
func BenchmarkAppendSQLite(b *testing.B) { benchAppend(b, storetest.SQLite(b, Migrations)) }

// BenchmarkAppendPostgres is the same against the test PostgreSQL server.
func BenchmarkAppendPostgres(b *testing.B) { benchAppend(b, storetest.Postgres(b, Migrations)) }

// bulkLoad writes n entries (with checkpoints every `every`, like Append)
// straight into the tables in one transaction, for building large logs
// quickly in benchmarks (SQLite only). It must produce exactly what Append
// would.
func bulkLoad(tb testing.TB, db *store.DB, key ed25519.PrivateKey, n, every int64) {
	tb.Helper()
	ctx := context.Background()
	keyID := KeyID(key.Public().(ed25519.PublicKey))
	details, err := canonicalDetails(map[string]any{"module": "continuity", "level": "write"})
	if err != nil {
		tb.Fatal(err)
	}
	base := store.Micros(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	const perStmt = 100
	// Positional "?" placeholders: SQLite resolves numbered ones by a
	// linear search per parameter, which dominates a 1000-parameter insert.
	values := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?),", perStmt), ",")
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, `INSERT INTO audit_entries (`+entryColumns+`) VALUES `+values)
		if err != nil {
			return err
		}
		defer ins.Close()
		prev := genesis
		next := int64(1)
		args := make([]any, 0, perStmt*10)
		var canon []byte
		for seq := int64(1); seq <= n; seq++ {
			at := base + seq*1000
			actor, action, resource := "user:alice", "grant.create", fmt.Sprintf("role:%d", seq%50)
			canon = appendCanonical(canon[:0], seq, at, []byte(actor), []byte("192.0.2.7"), []byte(action), []byte(resource), []byte(ResultOK), details)
			h := entryHash(prev, canon)
			args = append(args, seq, at, actor, "192.0.2.7", action, resource, ResultOK, string(details), prev, h)
			if len(args) == cap(args) {
				if _, err := ins.ExecContext(ctx, args...); err != nil {
					return err
				}
				args = args[:0]
			}
			if seq >= next {
				next = (seq/every + 1) * every
				sig := ed25519.Sign(key, checkpointMessage(seq, next, at, h))
				if _, err := tx.ExecContext(ctx, `INSERT INTO audit_checkpoints (seq, hash, next_seq, at, key_id, signature)
					VALUES ($1, $2, $3, $4, $5, $6)`, seq, h, next, at, keyID, sig); err != nil {
					return err
				}
			}
			prev = h
		}
		for len(args) > 0 {
			// Flush the remainder one row at a time.
			if _, err := tx.ExecContext(ctx, `INSERT INTO audit_entries (`+entryColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, args[:10]...); err != nil {
				return err
			}
			args = args[10:]
		}
		_, err = tx.ExecContext(ctx, `UPDATE audit_head SET seq = $1, hash = $2, next_checkpoint = $3 WHERE id = 1`, n, prev, next)
		return err
	})
	if err != nil {
		tb.Fatalf("bulk load: %v", err)
	}
}

func TestBulkLoadMatchesAppend(t *testing.T) {
	// The benchmark's bulk path must build a log Verify accepts, and
	// appends must continue it.
	db := storetest.SQLite(t, Migrations)
	bulkLoad(t, db, testKey(1), 257, 10)
	l, _ := newTestLog(db, 10)
	fill(t, l, 5)
	rep, err := l.Verify(context.Background(), VerifyOptions{})
	if err != nil || !rep.OK || rep.Entries != 262 || rep.Checkpoints != 27 {
		t.Errorf("Verify = %+v, %v; want OK with 262 entries and 27 checkpoints", rep, err)
	}
}

// BenchmarkVerify times Verify over a SQLite log of
// BULWARK_AUDIT_BENCH_ENTRIES entries (default 1,000,000).
func BenchmarkVerify(b *testing.B) {
	n := int64(1_000_000)
	if v := os.Getenv("BULWARK_AUDIT_BENCH_ENTRIES"); v != "" {
		var err error
		if n, err = strconv.ParseInt(v, 10, 64); err != nil {
			b.Fatal(err)
		}
	}
	db := storetest.SQLite(b, Migrations)
	start := time.Now()
	bulkLoad(b, db, testKey(1), n, DefaultCheckpointEvery)
	b.Logf("built %d entries in %v", n, time.Since(start).Round(time.Millisecond))
	l := New(db, testKey(1), Options{})
	ctx := context.Background()
	b.ResetTimer()
	start = time.Now()
	for b.Loop() {
		rep, err := l.Verify(ctx, VerifyOptions{})
		if err != nil || !rep.OK || rep.Entries != n {
			b.Fatalf("Verify = %+v, %v", rep, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/time.Since(start).Seconds(), "entries/s")
}

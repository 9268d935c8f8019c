package audit

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// testKey returns a deterministic key, different per seed byte.
func testKey(seed byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed
	}
	return ed25519.NewKeyFromSeed(s)
}

// clock is a fake clock advancing by step on every call.
type clock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func newClock(step time.Duration) *clock {
	return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), step: step}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(c.step)
	return t
}

// newTestLog returns a Log with key seed 1, a fake clock ticking one minute
// per reading, and checkpoints every `every` entries.
func newTestLog(db *store.DB, every int) (*Log, *clock) {
	c := newClock(time.Minute)
	return New(db, testKey(1), Options{CheckpointEvery: every, Now: c.Now}), c
}

// fill appends n entries with varied fields.
func fill(t testing.TB, l *Log, n int) []Entry {
	t.Helper()
	ctx := context.Background()
	actors := []string{"user:alice", "user:bob", "token:ci", "system"}
	actions := []string{"user.login", "user.create", "grant.create", "config.update", "token.revoke"}
	results := []string{ResultOK, ResultDenied, ResultFailed, ResultError}
	var out []Entry
	for i := range n {
		e, err := l.Append(ctx, Entry{
			Actor:    actors[i%len(actors)],
			Source:   fmt.Sprintf("192.0.2.%d", i%250),
			Action:   actions[i%len(actions)],
			Resource: fmt.Sprintf("user:%d", i%7),
			Result:   results[i%len(results)],
			Details:  map[string]any{"i": i, "note": "<b>&</b>", "nested": map[string]any{"z": 1, "a": []any{"x", 2}}},
		})
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		out = append(out, e)
	}
	return out
}

func mustExec(t testing.TB, db *store.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// rehash plays an attacker who knows the format: it recomputes the hash of
// every entry from seq `from` on (and the head row), so the chain is
// internally consistent again. With key non-nil it also re-signs every
// checkpoint from `from` on, as someone holding audit.key would.
func rehash(t testing.TB, db *store.DB, from int64, key ed25519.PrivateKey) {
	t.Helper()
	ctx := context.Background()
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		var prev []byte
		if from == 1 {
			prev = genesis
		} else if err := tx.QueryRow(`SELECT hash FROM audit_entries WHERE seq = $1`, from-1).Scan(&prev); err != nil {
			return err
		}
		rows, err := tx.Query(`SELECT `+entryColumns+` FROM audit_entries WHERE seq >= $1 ORDER BY seq`, from)
		if err != nil {
			return err
		}
		var all []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.seq, &r.at, &r.actor, &r.source, &r.action, &r.resource, &r.result, &r.details, &r.prev, &r.hash); err != nil {
				rows.Close()
				return err
			}
			all = append(all, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range all {
			h := entryHash(prev, appendCanonical(nil, r.seq, r.at, r.actor, r.source, r.action, r.resource, r.result, r.details))
			if _, err := tx.Exec(`UPDATE audit_entries SET prev_hash = $1, hash = $2 WHERE seq = $3`, prev, h, r.seq); err != nil {
				return err
			}
			if key != nil {
				var next, at int64
				err := tx.QueryRow(`SELECT next_seq, at FROM audit_checkpoints WHERE seq = $1`, r.seq).Scan(&next, &at)
				if err == nil {
					sig := ed25519.Sign(key, checkpointMessage(r.seq, next, at, h))
					if _, err := tx.Exec(`UPDATE audit_checkpoints SET hash = $1, signature = $2, key_id = $3 WHERE seq = $4`,
						h, sig, KeyID(key.Public().(ed25519.PublicKey)), r.seq); err != nil {
						return err
					}
				} else if err != sql.ErrNoRows {
					return err
				}
			}
			prev = h
		}
		if len(all) > 0 {
			last := all[len(all)-1]
			if _, err := tx.Exec(`UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1`, last.seq, prev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("rehash: %v", err)
	}
}
